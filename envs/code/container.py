"""A code world's workspace inside a container: git-tree states and file access through the sandbox.

The rule that holds on the host holds here: what the agent writes is data, never instructions. The
agent's commands run as an unprivileged user (`DockerSandbox(user=...)`), whose leftover processes
are killed after every command. trellis's git runs in the container as root, on a git directory in
root's own folder (`/var/lib/trellis/git`, the image's `.git` moved there) that the user can neither
read nor write, with the same configuration that trusts nothing as on the host (`git_environment`).
Files git writes back (a restore, a patch) are handed to the user again, link by link, never followed.

States are tree ids, as on the host: two branches that reach the same files are one state, and a
snapshot or restore costs one `exec` (tens of milliseconds). With `packs`, every state is also kept
on the host as a git pack, so a new container (a resumed run, after the old one went) restores it.
"""

from __future__ import annotations

import asyncio
import io
import os
import posixpath
import re
import shlex
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from trellis.envs.code.files import MAX_READ, SKIP_NAMES, Kind, Place, candidates, escape_error
from trellis.envs.code.workspace import NEUTRAL_ATTRIBUTES, STATE_NAME, GitError, git_environment
from trellis.envs.sandbox.base import RunRequest, RunResult
from trellis.envs.sandbox.docker import SYSTEM_PATH, TRELLIS_DIR, DockerSandbox

from trellis.errors import UserError
from trellis.tree import StateId

GIT_DIR = f"{TRELLIS_DIR}/git"
INDEX = f"{GIT_DIR}/trellis.index"
CONTAINER_PATH = SYSTEM_PATH
_OUTPUT = 64 * 2**20

# One script per operation, run as root with the environment of `git_environment`; "$W" is the workspace.
_OPEN = """set -e
W=$1 G=$GIT_DIR BASE=$2
if [ ! -d "$G" ]; then
  if [ -L "$W/.git" ] || [ -f "$W/.git" ]; then echo "$W/.git is a link or a file, not a repository" >&2; exit 3; fi
  umask 077
  if [ -d "$W/.git" ]; then
    mv "$W/.git" "$G"
    mkdir -p "$G/info"; printf '%s' "$ATTRIBUTES" > "$G/info/attributes"
    # what the image holds beside its repository (build output it does not ignore): kept out of states
    [ -f "$G/index" ] && GIT_INDEX_FILE="$G/index" \\
      git ls-files --others --exclude-standard --directory -z > "$G/trellis.untracked"
  else
    git init -q --template= "$G" >/dev/null
    mkdir -p "$G/info"; printf '%s' "$ATTRIBUTES" > "$G/info/attributes"
    git add --all
    git commit -q --no-verify -m base
  fi
  chown -R 0:0 "$G"; chmod 700 "$G"
  [ -f "$G/index" ] && [ ! -f "$GIT_INDEX_FILE" ] && cp "$G/index" "$GIT_INDEX_FILE"
  echo fresh
fi
printf '%s' "$ATTRIBUTES" > "$G/info/attributes"
[ -n "$3" ] && chown -R -h "$3" "$W"
git rev-parse --verify --end-of-options "$BASE^{commit}"
git rev-parse --verify --end-of-options "$BASE^{commit}^{tree}"
"""
_SNAPSHOT = "git add --all && git write-tree"
# Gives every file of the workspace git wrote (as root) back to user "$1": find never follows a link
# and hands chown the names as arguments, so no name, newline or link in it, leads anywhere else.
_HAND_BACK = """hand_back() {
  [ -n "$1" ] || return 0
  find "$GIT_WORK_TREE" -xdev ! -user "${1%%:*}" -exec chown -h "$1" {} + 2>/dev/null || true
}
"""
_RESTORE = (
    _HAND_BACK
    + """set -e
C="$GIT_DIR/trellis.changed"
git add --all
git diff-index --cached -z --name-only --no-renames "$1" > "$C"
if [ -s "$C" ]; then git read-tree --reset -u "$1"; hand_back "$2"; fi
cat "$C"
"""
)
_APPLY = (
    _HAND_BACK
    + """set -e
git apply --whitespace=nowarn "$1"
hand_back "$2"
"""
)
_PACK = 'git rev-list --objects --end-of-options "$@" | cut -d" " -f1 | git pack-objects --stdout -q > "$OUT"'
"""The objects of the given revisions (`^REV`: less those of REV) as a pack, into "$OUT"."""
OBJECT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _object_id(text: str, what: str) -> str:
    """An object id the container printed, checked before the host uses it (in a file name, say)."""
    value = text.strip()
    if not OBJECT_ID.fullmatch(value):
        raise GitError(f"git in the container gave {value[:80]!r} for {what}, not an object id")
    return value


def _exclude_line(path: str) -> str | None:
    """An anchored pattern of git's exclude files that matches `path` alone (None: not expressible)."""
    if "\n" in path:
        return None
    escaped = re.sub(r"([\\*?\[])", r"\\\1", path)
    stripped = escaped.rstrip(" ")
    return "/" + stripped + "\\ " * (len(escaped) - len(stripped))


def _names(output: str) -> list[str]:
    return [name for name in output.split("\0") if name]


class ContainerWorkspace:
    """A repository in a container (the image's, or the workspace folder committed as it is), addressed
    by tree ids; the same API as `GitWorkspace`."""

    def __init__(self, sandbox: DockerSandbox, base: str = "HEAD", *, packs: Path | None = None) -> None:
        """`packs`: a host folder where every state is kept as a git pack (`<tree>.pack`)."""
        self.sandbox = sandbox
        self.base = base
        self.packs = packs
        self.base_commit = ""
        self.base_tree = ""
        self._lock = asyncio.Lock()

    @property
    def root(self) -> str:
        return self.sandbox.workspace

    async def _git(self, script: str, *args: str, stdin: str | None = None, timeout: float = 600) -> RunResult:
        env = git_environment(GIT_DIR, self.root, INDEX, path=CONTAINER_PATH)
        env["ATTRIBUTES"] = NEUTRAL_ATTRIBUTES
        command = f"sh -c {shlex.quote(script)} sh {' '.join(shlex.quote(a) for a in args)}"
        request = RunRequest(command=command, env=env, stdin=stdin, timeout=timeout, output_cap=_OUTPUT)
        return await self.sandbox.admin(request)

    async def _checked(self, script: str, *args: str, what: str, stdin: str | None = None) -> str:
        await self.opened()
        result = await self._git(script, *args, stdin=stdin)
        if not result.ok:
            raise GitError(f"git {what} failed in the container: {result.output.strip()[-1000:]}")
        return result.stdout

    async def opened(self) -> ContainerWorkspace:
        """Set the repository up once (idempotent): git directory moved out of the workspace, the
        workspace handed to the agent's user, the base commit and tree read."""
        async with self._lock:
            if self.base_tree:
                return self
            if self.sandbox.user is None:
                raise UserError(
                    "a code world in a container runs the agent as an unprivileged user; "
                    "start the sandbox with DockerSandbox(..., user='1000:1000')"
                )
            result = await self._git(_OPEN, self.root, self.base, self.sandbox.user)
            lines = result.stdout.split()
            if not result.ok or len(lines) < 2:
                raise UserError(
                    f"cannot open the repository in {self.root} of image {self.sandbox.image} at {self.base!r}: "
                    f"{result.output.strip()[-800:]}; the image needs git, and the folder a repository "
                    "(or files to commit)"
                )
            self.base_commit = _object_id(lines[-2], "the base commit")
            self.base_tree = _object_id(lines[-1], "the base tree")
            if "fresh" in lines:
                await self._exclude_untracked()
            return self

    async def _exclude_untracked(self) -> None:
        """Files the image holds beside its repository (build output not ignored there) stay out of every
        state, patch and restore: listed in root's own exclude file."""
        try:
            listed = await self.sandbox.read_bytes(f"{GIT_DIR}/trellis.untracked")
        except UserError:  # a folder trellis committed itself: nothing beside it
            return
        paths = [p for p in (listed or b"").decode("utf-8", "surrogateescape").split("\0") if p]
        lines = [line for path in paths if (line := _exclude_line(path)) is not None]
        if not lines:
            return
        staged = await self.sandbox.put_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
        try:
            await self.sandbox.admin(RunRequest(command=f"cat {staged} >> {GIT_DIR}/info/exclude", timeout=60))
        finally:
            await self.sandbox.admin(RunRequest(command=f"rm -f {staged}", timeout=10))

    async def snapshot(self) -> StateId:
        state = _object_id(await self._checked(_SNAPSHOT, what="write-tree"), "a snapshot")
        if self.packs is not None and not (self.packs / f"{state}.pack").exists():
            self.packs.mkdir(parents=True, exist_ok=True)
            data = await self.export_state(state)
            # worlds of one search share the folder and may reach the same state at once: each writes a
            # file of its own, then puts it in place whole
            handle, partial = tempfile.mkstemp(dir=self.packs, prefix=f".{state}.", suffix=".partial")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(partial, self.packs / f"{state}.pack")
        return state

    async def _bring(self, state: StateId) -> None:
        """Import `state` from `packs` when this container lacks it (it was made in another one)."""
        pack = None if self.packs is None else self.packs / f"{state}.pack"
        if await self.has_state(state):
            return
        if pack is None or not pack.exists():
            raise UserError(
                f"state {state[:12]} is not in this container and no pack of it was kept; give every world "
                "of a search the same `packs` folder, so a state made in one container can be restored in another"
            )
        await self.import_state(pack.read_bytes())

    async def _on(self, state: StateId, script: str, *args: str, what: str) -> str:
        """Run `script` on `state`, bringing the state in first when this container lacks it."""
        try:
            return await self._checked(script, *args, what=what)
        except GitError:
            if await self.has_state(state):
                raise
        await self._bring(state)
        return await self._checked(script, *args, what=what)

    async def restore(self, state: StateId) -> list[str]:
        """Make the workspace hold exactly `state`; returns the paths that changed. A state another
        container made comes from `packs`."""
        state = _object_id(state, "the state to restore")
        return _names(await self._on(state, _RESTORE, state, self.sandbox.user or "", what="read-tree"))

    async def resolve(self, name: str) -> StateId:
        text = name.strip().lower()
        if not STATE_NAME.fullmatch(text):
            raise UserError(f"{name!r} is not a state id (4 to 64 hexadecimal digits)")
        try:
            out = await self._checked('git rev-parse --verify --quiet --end-of-options "$1^{tree}"', text, what="rev")
        except GitError:
            raise UserError(f"no stored state {text!r} in this workspace; give an id a snapshot returned") from None
        return _object_id(out, f"state {text}")

    async def diff(self, state: StateId | None = None, exclude: Sequence[str] = ()) -> str:
        """The patch from the base commit to `state` (default: the workspace as it is now)."""
        await self.opened()
        tree = state or await self.snapshot()
        script = 'b=$1 t=$2; shift 2; git diff --no-color --no-ext-diff --no-textconv --binary "$b" "$t" -- . "$@"'
        pathspec = [f":(exclude,literal){path}" for path in exclude]
        text = await self._on(tree, script, self.base_commit, tree, *pathspec, what="diff")
        return text if not text or text.endswith("\n") else text + "\n"

    async def files(self, state: StateId | None = None) -> list[str]:
        await self.opened()
        tree = state or self.base_commit
        out = await self._on(tree, 'git ls-tree -r -z --name-only "$1"', tree, what="ls-tree")
        return _names(out)

    async def apply(self, patch: str) -> tuple[bool, str]:
        """Apply a patch to the workspace: (applied, git's message)."""
        if not patch.strip():
            return True, "empty patch"
        await self.opened()
        staged = await self.sandbox.put_bytes((patch if patch.endswith("\n") else patch + "\n").encode())
        try:
            result = await self._git(_APPLY, staged, self.sandbox.user or "")
        finally:
            await self.sandbox.admin(RunRequest(command=f"rm -f {staged}", timeout=10))
        if not result.ok:
            return False, f"git apply failed: {result.output.strip()}"
        return True, "applied"

    async def _produced(self, script: str, *args: str, state: StateId, what: str) -> bytes:
        """The bytes `script` writes to "$OUT" (a file in root's folder, removed after)."""
        out = f"{GIT_DIR}/trellis.out"
        await self._on(state, f"OUT={out}; {script}", *args, what=what)
        data = await self.sandbox.read_bytes(out)
        await self.sandbox.admin(RunRequest(command=f"rm -f {out}", timeout=10))
        if data is None:
            raise GitError(f"git {what} wrote nothing for {state}")
        return data

    async def archive(self, state: StateId | None = None) -> bytes:
        """The files of `state` (default: the base commit) as a tar: data to read on the host, never
        run (extract it with `tarfile`'s "data" filter)."""
        await self.opened()
        tree = state or self.base_commit
        return await self._produced('git archive --format=tar "$1" > "$OUT"', tree, state=tree, what="archive")

    async def export_state(self, state: StateId) -> bytes:
        """`state`'s objects that the base commit lacks, as a git pack (see `GitWorkspace.export_state`)."""
        await self.opened()
        script = (
            'git rev-list --objects --end-of-options "$1" "^$2" | cut -d" " -f1 | git pack-objects --stdout -q > "$OUT"'
        )
        return await self._produced(script, state, self.base_tree, state=state, what="pack-objects")

    async def export_tree(self, tree: StateId | None = None) -> bytes:
        """Every object of `tree` (default: the base tree) as a git pack, no history: with the packs of
        later states, what a host needs to show their patches."""
        await self.opened()
        tree = _object_id(tree or self.base_tree, "the tree to export")
        return await self._produced(_PACK, tree, state=tree, what="pack-objects")

    async def import_state(self, pack: bytes) -> None:
        """Store the objects of a pack from `export_state`; a state is never half there."""
        await self.opened()
        staged = await self.sandbox.put_bytes(pack)
        try:
            await self._checked('git index-pack --stdin --strict < "$1" >/dev/null', staged, what="index-pack")
        finally:
            await self.sandbox.admin(RunRequest(command=f"rm -f {staged}", timeout=10))

    async def has_state(self, state: StateId) -> bool:
        await self.opened()
        return (await self._git('git cat-file -e "$1^{tree}"', state)).ok


# Resolves each path given, as the agent's user: the longest part that exists, its links followed
# (`readlink -f`), then the rest as written; a dangling link prints "?".
_LOCATE = r"""W=$1; shift
for c in "$@"; do
  p="$W/$c"; rest=""
  while [ ! -e "$p" ] && [ ! -L "$p" ] && [ "$p" != "$W" ]; do rest="/${p##*/}$rest"; p="${p%/*}"; done
  r=$(readlink -f -- "$p" 2>/dev/null) || r="?"
  [ -n "$r" ] || r="?"
  k=missing
  if [ -z "$rest" ]; then
    if [ -f "$r" ]; then k=file; elif [ -d "$r" ]; then k=dir; elif [ -e "$r" ]; then k=other; fi
  fi
  printf '%s\t%s\t%s\n' "$k" "$r" "$rest"
done
"""


class ContainerFiles:
    """The workspace's files in a container, as the tools see them (see `files.WorkspaceFiles`)."""

    def __init__(self, sandbox: DockerSandbox, *, names: tuple[str, ...] = ()) -> None:
        self.sandbox = sandbox
        self.names = names

    @property
    def root(self) -> str:
        return self.sandbox.workspace

    def _inside(self, path: str) -> str | None:
        normal = posixpath.normpath(path)
        if normal == self.root:
            return "."
        if normal.startswith(self.root.rstrip("/") + "/"):
            return normal[len(self.root.rstrip("/")) + 1 :]
        return None

    async def locate(self, path: str) -> Place:
        # no process of the agent's may change the workspace between this look and root's read after it
        await self.sandbox.settle()
        options, outside = candidates(
            path, self.root, alias="/workspace", names=(*self.names, PurePosixPath(self.root).name)
        )
        args = " ".join(shlex.quote(str(option)) for option in options)
        result = await self.sandbox.run(
            RunRequest(command=f"sh -c {shlex.quote(_LOCATE)} sh {shlex.quote(self.root)} {args}", timeout=30)
        )
        rows = [line.split("\t") for line in result.stdout.splitlines() if line.count("\t") == 2]
        if not result.ok or len(rows) != len(options):
            raise UserError(f"cannot look up {path!r} in the container: {result.output.strip()[-300:]}")
        places = []
        for option, (kind, resolved, rest) in zip(options, rows, strict=True):
            rel = None if resolved == "?" else self._inside(resolved + rest)
            if rel is None:
                lexical = self._inside(posixpath.join(self.root, str(option)))
                raise escape_error(path, link=lexical is not None)
            folder = rest.count("/") <= 1
            places.append(Place(rel=rel, kind=_kind(kind), folder_exists=folder))
        chosen = next((p for p in places if p.kind != "missing"), None)
        if chosen is None and outside:
            raise escape_error(path)
        return chosen or next((p for p in places if p.folder_exists), places[0])

    async def read(self, rel: str) -> str | None:
        try:
            data = await self.sandbox.read_bytes(rel, limit=MAX_READ)
        except UserError:
            return None
        if data is None or b"\0" in data[:4096]:
            return None
        return data.decode("utf-8", errors="replace")

    async def listing(self, start: str = ".") -> list[str]:
        prune = " -o ".join(f"-name {shlex.quote(name)}" for name in sorted(SKIP_NAMES))
        command = f"find {shlex.quote(start)} \\( {prune} \\) -prune -o -type f -print"
        result = await self.sandbox.run(RunRequest(command=command, timeout=60, output_cap=_OUTPUT))
        out = [posixpath.normpath(line) for line in result.stdout.splitlines() if line]
        return sorted(out)

    async def texts(self, start: str = ".", suffix: str = "") -> list[tuple[str, str]]:
        data = await self.sandbox.archive(start)
        base = PurePosixPath(start)
        out = []
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not member.isfile() or member.size > MAX_READ or SKIP_NAMES.intersection(parts):
                    continue
                rel = posixpath.normpath(str(base.joinpath(*parts[1:]))) if len(parts) > 1 else str(base)
                if not rel.endswith(suffix) or (handle := tar.extractfile(member)) is None:
                    continue
                raw = handle.read()
                if b"\0" not in raw[:4096]:
                    out.append((rel, raw.decode("utf-8", errors="replace")))
        return sorted(out)


def _kind(value: str) -> Kind:
    return "file" if value == "file" else "dir" if value == "dir" else "other" if value == "other" else "missing"
