"""Your own torch model, explicitly trusted: factories a device registers, and the
recipes that name them (``architecture.family = "custom"``).

A factory is a function ``factory(recipe) -> torch.nn.Module`` that builds the model
for ``recipe`` (its ``task.num_labels``, ``tokenizer.vocab_size``, and its own
``architecture.config``). Its model takes what the built-in ones take:

- tabular and image recipes: a float tensor ``[batch, features]`` (images flat);
- text recipes: token ids ``[batch, length]`` from the recipe's tokenizer, 0 = padding;

and returns logits ``[batch, num_labels]``.

A device registers factories in one of two ways, and only these run:

- an entry point in the group ``fedseed.architectures`` of an installed package
  (``[project.entry-points."fedseed.architectures"] my-cnn = "my_models:small_cnn"``);
- :func:`register` in the device's own process (its ClientApp, a notebook).

A recipe pins the factory by its registered ``name``, its ``entry``
(``module:function``) and ``source``, the SHA-256 of the source of the module that
defines it. Before building, the device checks all three against its own code and
refuses a recipe whose code differs, with one line. The recipe's ``entry`` is only
ever compared, never imported: a recipe cannot make a device run code it did not
register.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from fedseed.errors import ArchitectureError, VerificationError
from fedseed.recipe.architecture import ConfigValue, CustomArchitecture
from fedseed.recipe.codec import canonical_dict, recipe_from_dict
from fedseed.recipe.model import Recipe

if TYPE_CHECKING:
    import torch

#: The entry point group a package registers its model factories in.
GROUP = "fedseed.architectures"

Factory = Callable[[Recipe], Any]

#: Factories registered in this process with :func:`register`.
_REGISTERED: dict[str, Factory] = {}


def register(name: str, factory: Factory) -> None:
    """Register ``factory`` as architecture ``name`` in this process."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", name):
        raise ArchitectureError(f"architecture name '{name}': use 1-64 lowercase letters, "
                                "digits, '.', '_' or '-'")
    if not callable(factory):
        raise ArchitectureError(f"architecture '{name}': {factory!r} is not callable")
    _REGISTERED[name] = factory


def unregister(name: str) -> None:
    """Forget a factory :func:`register` added in this process (entry points stay)."""
    _REGISTERED.pop(name, None)


def registered_names() -> list[str]:
    """Every architecture name this device can build: its entry points and its
    :func:`register` calls (entry points are listed, not imported)."""
    return sorted({*_REGISTERED, *(ep.name for ep in entry_points(group=GROUP))})


def factory_for(name: str) -> Factory:
    """The factory registered as ``name``; only that entry point is loaded."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        known = ", ".join(registered_names()) or "none"
        raise ArchitectureError(
            f"architecture 'custom:{name}' is not registered on this device (registered: "
            f"{known}); install the package that provides it (entry point group "
            f"'{GROUP}') or call fedseed.architectures.register('{name}', factory)")
    try:
        factory = found[0].load()
    except Exception as e:  # noqa: BLE001 - the device's own package failed to import
        raise ArchitectureError(f"architecture 'custom:{name}': entry point "
                                f"{found[0].value} failed to load ({type(e).__name__}: "
                                f"{e})") from e
    if not callable(factory):
        raise ArchitectureError(f"architecture 'custom:{name}': entry point "
                                f"{found[0].value} is not callable")
    return factory


def entry_of(factory: Factory) -> str:
    """``module:qualified.name`` of a factory."""
    return f"{factory.__module__}:{factory.__qualname__}"


def source_digest(factory: Factory) -> str:
    """``sha256:<hex>`` of the source of the module that defines ``factory`` (the
    whole module: helpers the factory calls are part of the model)."""
    module = inspect.getmodule(factory)
    try:
        source = inspect.getsource(module if module is not None else factory)
    except (OSError, TypeError) as e:
        raise ArchitectureError(f"architecture factory {entry_of(factory)}: its source "
                                f"cannot be read ({e}), so it cannot be pinned") from e
    return "sha256:" + hashlib.sha256(source.encode("utf-8")).hexdigest()


def custom_architecture(name: str, config: dict[str, ConfigValue] | None = None
                        ) -> CustomArchitecture:
    """The recipe section naming registered factory ``name``, pinned to this code."""
    from pydantic import ValidationError

    factory = factory_for(name)
    try:
        return CustomArchitecture(name=name, entry=entry_of(factory),
                                  source=source_digest(factory), config=config or {})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ArchitectureError(f"architecture 'custom:{name}': {where}: {first['msg']}"
                                ) from e


def with_architecture(recipe: Recipe, name: str,
                      config: dict[str, ConfigValue] | None = None) -> Recipe:
    """``recipe`` training registered factory ``name`` instead of its own model."""
    data = canonical_dict(recipe)
    data["architecture"] = custom_architecture(name, config).model_dump(mode="json")
    return recipe_from_dict(data, source=f"{recipe.name} with custom:{name}")


def build_custom(recipe: Recipe) -> torch.nn.Module:
    """The model of a ``custom`` recipe, once this device's code matches its pins."""
    import torch

    arch = recipe.architecture
    assert isinstance(arch, CustomArchitecture)
    factory = factory_for(arch.name)
    entry = entry_of(factory)
    if entry != arch.entry:
        raise VerificationError(
            f"architecture 'custom:{arch.name}': the recipe pins {arch.entry}, this device "
            f"registered {entry}; install the same code, or derive a recipe from this "
            "device's with `fedseed recipe new --architecture`", reason="code")
    digest = source_digest(factory)
    if digest != arch.source:
        raise VerificationError(
            f"architecture 'custom:{arch.name}': this device's code ({entry}, "
            f"{digest[:19]}…) differs from the code the recipe pins ({arch.source[:19]}…); "
            "install the version the recipe was made with", reason="code")
    model = factory(recipe)
    if not isinstance(model, torch.nn.Module):
        raise ArchitectureError(f"architecture 'custom:{arch.name}': {entry} returned "
                                f"{type(model).__name__}, not a torch.nn.Module")
    return model


__all__ = ["GROUP", "build_custom", "custom_architecture", "entry_of", "factory_for",
           "register", "registered_names", "source_digest", "unregister", "with_architecture"]
