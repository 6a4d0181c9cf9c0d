"""Per-user text from Debian's ``fortunes`` package: one user per category file.

The files are in strfile(1) source format: quotes separated by lines holding a
single ``%``. Categories differ in style (limericks, computer quips, Star Trek
lines), which makes them a natural non-iid text federation that lives on the local
disk (``apt-get install fortunes``), not on a hub.
"""

from __future__ import annotations

from pathlib import Path

from fedseed.data.examples import Examples
from fedseed.errors import DataError

#: Where Debian installs the category files.
FORTUNES_DIR = Path("/usr/share/games/fortunes")
_SKIP_SUFFIXES = (".dat", ".u8", ".pdat")


def read_fortune_file(path: Path) -> tuple[str, ...]:
    """The quotes of one strfile source file, stripped, empty ones dropped."""
    text = path.read_text(encoding="utf-8", errors="replace")
    quotes: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.strip() == "%":
            quotes.append("\n".join(current).strip())
            current = []
        else:
            current.append(line.rstrip())
    quotes.append("\n".join(current).strip())
    return tuple(q for q in quotes if q)


def load_fortunes(directory: Path = FORTUNES_DIR, *, min_quotes: int = 20,
                  max_users: int | None = None) -> dict[str, Examples]:
    """One :class:`Examples` per category file with at least ``min_quotes`` quotes,
    largest categories first when ``max_users`` caps their number."""
    if not directory.is_dir():
        raise DataError(f"{directory}: no fortunes here; install them with "
                        "'apt-get install fortunes' (Debian/Ubuntu) or pass another folder")
    users: dict[str, tuple[str, ...]] = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and not path.name.endswith(_SKIP_SUFFIXES) \
                and not path.name.startswith("."):
            quotes = read_fortune_file(path)
            if len(quotes) >= min_quotes:
                users[path.name] = quotes
    if not users:
        raise DataError(f"{directory}: no category file with at least {min_quotes} quotes")
    names = sorted(users, key=lambda n: (-len(users[n]), n))[:max_users]
    return {name: Examples(source=f"fortunes/{name}", texts=users[name])
            for name in sorted(names)}
