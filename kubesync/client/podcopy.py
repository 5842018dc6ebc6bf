"""Copying files and folders to and from containers, as ``kubectl cp`` does: a tar archive
streamed over exec. ``Api.copy_to``/``Api.copy_from`` call these.

``copy_to`` builds the archive here (``tarfile`` in stream mode, a block at a time) and
feeds it to ``tar xf - -o -C DIR`` in the container; ``copy_from`` reads the archive of
``tar cf - -C DIR NAME`` and extracts it here. Neither holds the archive, nor a whole
file, in memory. Only ``tar`` is needed in the container (busybox's will do).

The container is not trusted: kubectl's CVE-2018-1002100, CVE-2019-1002101, CVE-2019-11246,
CVE-2019-11249 and CVE-2019-11251 were each a container's archive writing outside the
destination. ``Extraction`` checks every member before it writes anything for it: no
absolute path, no ``..``, nothing outside the path asked for, nothing through a symlink,
symlinks and hard links only to places inside the copy (resolved through the links
already there, and all links checked again at the end), and only files, folders and links.
It extracts into a staging folder beside the destination and moves it into place only
when the whole archive was accepted and tar exited 0, so a refused archive, a failed tar
or a broken stream leave nothing behind.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from typing import TYPE_CHECKING, Iterator, List, Optional, Protocol, Set, Tuple, Union

from kubesync.client.podexec import V5, ExecProcess, open_process
from kubesync.core.request import RequestBuilder
from kubesync.errors import CopyError, ExecError, RequestTimeout, TransportError, UsageError

if TYPE_CHECKING:
    from kubesync.client.client import Client

__all__ = ["Extraction", "Readable", "Writable", "copy_from", "copy_to", "extract", "send_archive",
           "split_remote", "walk"]

PathLike = Union[str, "os.PathLike[str]"]

#: How many times a remote path that is itself a symlink is followed (Linux's own limit
#: for one lookup is 40; a copy asks for one named path, so a short chain is plenty).
MAX_HOPS = 8
#: Bytes moved at a time: tar's stream blocks (one exec stdin message each, the size
#: podexec sends) and the copies between a member and its file.
CHUNK = 64 * 1024
#: Permission bits kept; set-user-ID, set-group-ID and sticky bits are dropped (a copy is
#: owned by whoever copies, so those bits would mean something else here).
MODE_BITS = 0o777
#: Seconds tar may take to exit once its archive is all sent or received. tar exits as
#: soon as it wrote or read the end of its archive; a container that keeps the session
#: open longer is stuck or lying, and the copy ends with RequestTimeout.
TAR_EXIT_GRACE = 60.0
#: Name prefix of the staging folder made beside a copy_from destination.
STAGING_PREFIX = ".kubesync-copy-"

_KINDS = {tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
          tarfile.FIFOTYPE: "a FIFO"}


def split_remote(remote_path: str) -> Tuple[str, str]:
    """``(folder, name)`` for tar's ``-C folder name``; ``name`` is ``"."`` when the path
    itself is a folder to use whole (``/``, ``/data/.``, ``..``)."""
    if not remote_path:
        raise UsageError("the remote path is empty")
    path = remote_path.rstrip("/") or "/"
    folder, name = posixpath.split(path)
    if path == "/" or name in (".", ".."):
        return path, "."
    return folder or ".", name


class Readable(Protocol):
    """What ``extract`` reads a tar stream from: a command's ``stdout``, or any binary file."""

    def read(self, n: int = -1, /) -> bytes: ...


class Writable(Protocol):
    """What the archive for ``copy_to`` is written to: a command's ``stdin``, or a file."""

    def write(self, data: bytes, /) -> int: ...


class _ExecPipe:
    """One side of an exec session as the file object ``tarfile`` streams through."""

    def __init__(self, reader: Optional[Readable] = None, writer: Optional[Writable] = None):
        self._reader, self._writer = reader, writer
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        assert self._reader is not None
        data = self._reader.read(size)
        self._pos += len(data)
        return data

    def write(self, data: bytes) -> int:
        assert self._writer is not None
        self._pos += self._writer.write(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int) -> int:
        raise OSError(errno.ESPIPE, "an exec stream cannot seek")

    def close(self) -> None:
        pass


# -- the pod's side: tar and its exit --------------------------------------------------


def _where(rb: RequestBuilder, name: str, container: Optional[str], path: str) -> str:
    pod = f"{rb.namespace}/{name}" if rb.namespace else name
    return f"pod {pod}" + (f" container {container}" if container else "") + f" path {path}"


def _check_tar(proc: ExecProcess, where: str) -> None:
    """Wait for tar to end; ``CopyError`` with its exit code and stderr unless it was 0."""
    try:
        code = proc.wait(TAR_EXIT_GRACE)
    except ExecError as exc:
        if exc.returncode is not None:
            raise
        reason = exc.status.message if exc.status is not None else str(exc)
        raise CopyError(f"could not run tar in {where} (copying needs tar in the "
                        f"container, as kubectl cp does): {reason}") from None
    if code != 0:
        raise CopyError(f"tar failed in {where} with exit code {code}", returncode=code,
                        stderr=proc.stderr.read())


def copy_to(client: Client, rb: RequestBuilder, name: str, local_path: PathLike,
            remote_path: str, *, container: Optional[str] = None,
            timeout: Optional[float] = None) -> None:
    """Copy a local file or folder so that it becomes ``remote_path`` in the container."""
    source = os.fspath(local_path)
    folder, top = split_remote(remote_path)
    if not os.path.exists(source):
        raise FileNotFoundError(errno.ENOENT, "no local file or folder to copy", source)
    real = os.path.realpath(source)
    is_dir = stat.S_ISDIR(os.stat(real).st_mode)
    if top == "." and not is_dir:
        raise UsageError(f"the remote path {remote_path!r} names a folder; a file needs "
                         "the path it is to have")
    entries = list(walk(real, top))  # checked whole before a byte is sent
    where = _where(rb, name, container, remote_path)
    command = ("tar", "xf", "-", "-o", "-C", folder)
    with open_process(client, rb, name, command, container=container, stdin=True,
                      timeout=timeout) as proc:
        assert proc.stdin is not None
        try:
            send_archive(proc.stdin, entries)
            if proc.protocol == V5:
                proc.stdin.close()  # else tar ends at the archive's end marker
        except TransportError:
            pass  # tar ended early: its exit code and stderr say why
        _check_tar(proc, where)


def walk(real: str, top: str) -> Iterator[Tuple[str, str]]:
    """``(path, name in the archive)`` for ``real`` and all below it, links not followed;
    ``CopyError`` for what tar should not carry (FIFOs, sockets, device files)."""
    stack = [(real, top)]
    while stack:
        path, arcname = stack.pop()
        st = os.lstat(path) if path != real else os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            if not os.access(path, os.R_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "cannot read the folder to copy", path)
            yield path, arcname
            with os.scandir(path) as it:
                names = sorted(entry.name for entry in it)
            stack.extend((os.path.join(path, n), posixpath.join(arcname, n))
                         for n in reversed(names))
        elif stat.S_ISREG(st.st_mode):
            if not os.access(path, os.R_OK):
                raise PermissionError(errno.EACCES, "cannot read the file to copy", path)
            yield path, arcname
        elif stat.S_ISLNK(st.st_mode):
            yield path, arcname  # sent as a symlink, whatever it points to
        else:
            raise CopyError(f"cannot copy {path!r}: only files, folders and symlinks are "
                            "copied", member=arcname)


def send_archive(out: Writable, entries: List[Tuple[str, str]]) -> None:
    """Write the tar stream of ``entries`` (from ``walk``) to ``out``, a block at a time."""
    # GNU long names, which every tar (busybox's too) reads; uid/gid 0 and no names, as
    # the container's tar is told to ignore them anyway (-o).
    with tarfile.open(fileobj=_ExecPipe(writer=out), mode="w|", bufsize=CHUNK,
                      format=tarfile.GNU_FORMAT) as archive:
        for path, arcname in entries:
            info = archive.gettarinfo(path, arcname)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode &= MODE_BITS
            if info.isreg():
                with open(path, "rb") as f:
                    archive.addfile(info, f)
            else:
                archive.addfile(info)


def copy_from(client: Client, rb: RequestBuilder, name: str, remote_path: str,
              local_path: PathLike, *, container: Optional[str] = None,
              timeout: Optional[float] = None) -> None:
    """Copy a file or folder of the container so that it becomes ``local_path``."""
    remote = remote_path
    for _ in range(MAX_HOPS + 1):
        folder, top = split_remote(remote)
        where = _where(rb, name, container, remote)
        extraction = Extraction(local_path, top, source=where)
        with open_process(client, rb, name, ("tar", "cf", "-", "-C", folder, top),
                          container=container, timeout=timeout) as proc:
            try:
                link = _receive(proc, extraction, where)
                if link is None:
                    extraction.commit()
                    return
            finally:
                extraction.discard()
        remote = posixpath.join(folder, link)
    raise CopyError(f"{remote_path!r} in {where} is a chain of more than {MAX_HOPS} "
                    "symlinks")


def _receive(proc: ExecProcess, extraction: Extraction, where: str) -> Optional[str]:
    """Extract tar's archive into ``extraction``; the target when the path itself is a
    symlink (nothing is extracted then), else None once tar exited 0."""
    try:
        link = extract(proc.stdout, extraction)
        if link is not None:
            return link
    except tarfile.TarError as exc:
        try:
            _check_tar(proc, where)  # a failed tar explains a broken archive best
        except RequestTimeout:
            pass
        raise CopyError(f"the archive tar sent from {where} is broken: {exc}") from None
    # What follows the archive's end (its padding) is left unread: it stays in the
    # session's bounded buffer, and a container that keeps sending cannot keep us here.
    _check_tar(proc, where)
    if extraction.empty:
        raise CopyError(f"tar sent an empty archive from {where}")
    return None


def extract(stream: Readable, extraction: Extraction) -> Optional[str]:
    """Feed each member of the tar stream to ``extraction`` (a block at a time); the
    target, with nothing extracted, when the copied path itself is a symlink."""
    with tarfile.open(fileobj=_ExecPipe(reader=stream), mode="r|", bufsize=CHUNK) as archive:
        for member in archive:
            if extraction.is_top_link(member):
                return member.linkname
            extraction.add(archive, member)
    return None


# -- the local side: the extraction guard ----------------------------------------------


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class Extraction:
    """One archive from a container, extracted safely to ``dest``: ``add`` each member,
    then ``commit`` (move into place) or ``discard`` (leave nothing).

    ``top`` is the archive's name for the copied path (its first component), ``"."``
    when members are ``./...``. ``dest`` is followed if it is a symlink (as the named
    path), and becomes what was copied: a file replaces a file there, a folder is merged
    into a folder there. Nothing below it is ever written through a symlink.
    """

    def __init__(self, dest: PathLike, top: str, *, source: str):
        self.dest = os.path.realpath(os.fspath(dest))
        self.top = top
        self.source = source
        parent = os.path.dirname(self.dest)
        if not os.path.isdir(parent):
            raise FileNotFoundError(errno.ENOENT, "the destination's folder does not exist",
                                    parent)
        self.empty = True
        self._is_dir = False
        self._staging: Optional[str] = None  # made at the first member accepted
        self._root = ""  # <staging>/copy: what becomes dest
        # (parts, mode, mtime) of each folder, applied after the move: a folder without
        # write permission must stay writable until its contents are in.
        self._dirs: List[Tuple[Tuple[str, ...], int, float]] = []
        self._links: List[Tuple[str, ...]] = []

    # -- checks ---------------------------------------------------------------------

    def _refuse(self, member: str, reason: str) -> CopyError:
        return CopyError(f"refused the archive from {self.source}: its member {member!r} "
                         f"{reason}; nothing was written", member=member)

    def _parts(self, name: str, member: str) -> Tuple[str, ...]:
        """The path below the copy a name in the archive stands for."""
        if name.startswith("/"):
            raise self._refuse(member, "is an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self._refuse(member, "has a '..' component")
        if any(os.sep in p or (os.altsep and os.altsep in p) or "\0" in p for p in parts):
            raise self._refuse(member, "has a name this system cannot hold")
        if self.top != ".":
            if not parts or parts[0] != self.top:
                raise self._refuse(member, f"is outside the path asked for ({self.top!r})")
            parts = parts[1:]
        return tuple(parts)

    def is_top_link(self, member: tarfile.TarInfo) -> bool:
        """Whether ``member`` says the copied path itself is a symlink (to follow)."""
        return self.empty and member.issym() and self._parts(member.name, member.name) == ()

    def _check_parents(self, parts: Tuple[str, ...], member: str) -> None:
        """Every folder above ``parts`` is a real folder of the copy, or not there yet."""
        path = self._root
        for part in parts[:-1]:
            path = os.path.join(path, part)
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                return
            if stat.S_ISLNK(mode):
                raise self._refuse(member, f"would be written through the symlink {part!r}")
            if not stat.S_ISDIR(mode):
                raise self._refuse(member, f"would be written below the file {part!r}")

    def _check_link(self, member: tarfile.TarInfo, parts: Tuple[str, ...]) -> None:
        target = member.linkname
        if member.issym():
            if not target:
                raise self._refuse(member.name, "is a symlink to nothing")
            if target.startswith("/"):
                raise self._refuse(member.name, f"is a symlink to the absolute path "
                                                f"{target!r}, outside the destination")
            at = os.path.join(self._root, *parts[:-1], target)
            if not _inside(os.path.realpath(at), self._root):
                raise self._refuse(member.name, f"is a symlink to {target!r}, which "
                                                "resolves outside the destination")
            return
        if not parts:
            raise self._refuse(member.name, "is a hard link in place of the path asked for")
        try:
            linked = self._parts(target, member.name) if target else ()
        except CopyError:
            raise self._refuse(member.name, f"is a hard link to {target!r}, outside the "
                                            "destination") from None
        if not linked:
            raise self._refuse(member.name, f"is a hard link to {target!r}, not to a file "
                                            "of the copy")
        self._check_parents(linked, member.name)
        try:
            mode = os.lstat(os.path.join(self._root, *linked)).st_mode
        except FileNotFoundError:
            mode = 0
        if not stat.S_ISREG(mode):
            raise self._refuse(member.name, f"is a hard link to {target!r}, not to a file "
                                            "extracted before it")

    def _check_first(self, member: tarfile.TarInfo, parts: Tuple[str, ...]) -> None:
        """The first member says file or folder: the destination must fit, before any write."""
        self._is_dir = bool(parts) or member.isdir()
        try:
            mode: Optional[int] = os.lstat(self.dest).st_mode
        except FileNotFoundError:
            mode = None
        if mode is None:
            return
        if self._is_dir and not stat.S_ISDIR(mode):
            raise NotADirectoryError(errno.ENOTDIR, f"{self.source} is a folder, and the "
                                     "destination is not", self.dest)
        if not self._is_dir and stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, f"{self.source} is a file, and the "
                                    "destination is a folder", self.dest)

    # -- writing ----------------------------------------------------------------------

    def add(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """Check ``member`` whole, then write it into the staging folder."""
        parts = self._parts(member.name, member.name)
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            kind = _KINDS.get(member.type, f"of the tar type {member.type!r}")
            raise self._refuse(member.name, f"is {kind}; only files, folders and links "
                                            "are copied")
        if self.empty:
            self._check_first(member, parts)
            self._make_staging()
        elif not self._is_dir or (not parts and not member.isdir()):
            raise self._refuse(member.name, "comes after the copied path itself")
        self._check_parents(parts, member.name)
        if member.issym() or member.islnk():
            self._check_link(member, parts)
        path = os.path.join(self._root, *parts)
        self._clear(path, member)
        # Checked: from here on this member is written.
        self.empty = False
        self._make_parents(parts)
        if member.isdir():
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
            self._dirs.append((parts, member.mode & MODE_BITS, member.mtime))
        elif member.issym():
            os.symlink(member.linkname, path)
            self._links.append(parts)
        elif member.islnk():
            os.link(os.path.join(self._root, *self._parts(member.linkname, member.name)),
                    path, follow_symlinks=False)
        else:
            self._write_file(archive, member, path)

    def _make_staging(self) -> None:
        # Private (0700) and beside dest, so the final move is a rename on one filesystem.
        self._staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=os.path.dirname(self.dest))
        self._root = os.path.join(self._staging, "copy")

    def _make_parents(self, parts: Tuple[str, ...]) -> None:
        """Folders the archive has no member for (tar normally sends each): made with the
        umask's mode, and left so."""
        path = self._root
        for i in range(len(parts)):
            if not os.path.lexists(path):
                os.mkdir(path)
            path = os.path.join(path, parts[i])

    def _clear(self, path: str, member: tarfile.TarInfo) -> None:
        """A name the archive repeats: the later member wins, as with tar; refused when
        one is a folder and the other not."""
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISDIR(mode) != member.isdir():
            raise self._refuse(member.name, "appears twice, as a folder and as something else")
        if not stat.S_ISDIR(mode):
            os.unlink(path)  # in the staging folder only; not yet this member's write

    def _write_file(self, archive: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        data = archive.extractfile(member)
        assert data is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) \
            | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(data, out, CHUNK)
        os.chmod(path, member.mode & MODE_BITS)
        os.utime(path, (member.mtime, member.mtime))

    # -- the end ----------------------------------------------------------------------

    def commit(self) -> None:
        """Check every symlink again as the whole copy has it, then move it into place."""
        if self._staging is None:
            raise UsageError("nothing was extracted")
        for parts in self._links:
            if not _inside(os.path.realpath(os.path.join(self._root, *parts)), self._root):
                name = posixpath.join(self.top, *parts)
                raise self._refuse(name, "is a symlink that, with the links after it, "
                                         "resolves outside the destination")
        existing: Set[Tuple[str, ...]] = set()
        if not os.path.lexists(self.dest):
            os.rename(self._root, self.dest)
        elif not self._is_dir:
            os.replace(self._root, self.dest)
        else:
            _check_merge(self._root, self.dest)
            _merge(self._root, self.dest, (), existing)
        for parts, mode, mtime in sorted(self._dirs, key=lambda d: len(d[0]), reverse=True):
            if parts in existing:
                continue  # a folder that was there keeps its own mode
            path = os.path.join(self.dest, *parts)
            os.chmod(path, mode)
            os.utime(path, (mtime, mtime))
        self.discard()

    def discard(self) -> None:
        """Remove the staging folder and whatever is still in it (never follows a link)."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None


def _check_merge(src: str, dst: str) -> None:
    """Refuse, before moving anything, a merge that would put a folder on a non-folder (or
    a symlink) or a non-folder on a folder."""
    for entry in os.scandir(src):
        target = os.path.join(dst, entry.name)
        try:
            mode = os.lstat(target).st_mode
        except FileNotFoundError:
            continue
        if entry.is_dir(follow_symlinks=False):
            if not stat.S_ISDIR(mode):
                raise NotADirectoryError(errno.ENOTDIR, "a copied folder would replace "
                                         "something that is not a folder", target)
            _check_merge(entry.path, target)
        elif stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "a copied file would replace a folder",
                                    target)


def _merge(src: str, dst: str, parts: Tuple[str, ...], existing: Set[Tuple[str, ...]]) -> None:
    existing.add(parts)
    for entry in os.scandir(src):
        target = os.path.join(dst, entry.name)
        if entry.is_dir(follow_symlinks=False) and os.path.lexists(target):
            _merge(entry.path, target, (*parts, entry.name), existing)
        else:
            os.replace(entry.path, target)
