"""The builder: a Dockerfile's stages run step by step into images, with a cache, through the engine.

``build(request, root=, run_root=, out=, stdin=)`` runs docker's ``build``:

1. the context (``context.py``) and the Dockerfile (``dockerfile.parse``);
2. the stages the target needs — its ``FROM`` chain, ``COPY --from`` and
   ``RUN --mount=from=`` — others are skipped; each base is an earlier
   stage, ``scratch``, or an image (pulled when missing or with ``--pull``);
   the base's ONBUILD triggers run first;
3. each instruction: metadata ones change the config and add an empty-layer
   history entry; RUN, COPY, ADD (and a WORKDIR that must be made) run in a
   step container (``containers.py``) and add one layer; each such step is
   looked up in the cache first (``cache.py``) and prints ``CACHED`` on a hit;
4. the target's image is stored, tagged (``-t``, only after every step
   succeeded) and exported (``-o``).

A failing step raises ``Unknown`` (RUN: its exit code and last output lines)
or the step's own error; nothing is tagged and its container is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
from dataclasses import dataclass, field, replace

from pallet.build import dockerfile as df
from pallet.build.cache import BuildCache, step_key
from pallet.build.dockerfile.expansion import ExpansionError, expand_word, expand_words
from pallet.build.request import BuildRequest, BuildResult, check_platform
from pallet.build.state import StageImage, format_time, from_image, materialize, scratch
from pallet.errors import InvalidArgument, NotFound, PalletError, Unknown, Unsupported
from pallet.oci.image_spec import ContainerConfig, Healthcheck

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import BinaryIO, TextIO

    from pallet.build.containers import StepContainers
    from pallet.build.context import BuildContext
    from pallet.build.progress import Progress, Step
    from pallet.build.sources import SourceTree
    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.spec.options import RunOptions
    from pallet.image.store import ImageStore

__all__ = ["build"]

#: the args every build knows without an ARG line in the global scope (BuildKit's automatic platform args)
PLATFORM_ARGS = {
    "TARGETPLATFORM": "linux/amd64",
    "TARGETOS": "linux",
    "TARGETARCH": "amd64",
    "TARGETVARIANT": "",
    "BUILDPLATFORM": "linux/amd64",
    "BUILDOS": "linux",
    "BUILDARCH": "amd64",
    "BUILDVARIANT": "",
}
#: args usable without an ARG line, and kept out of the history (docker's predefined proxy args)
PROXY_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)


@dataclass(slots=True)
class _Stage:
    """A stage while it runs: its image state, args in scope, cache key and what is pending."""

    index: int
    label: str
    image: StageImage
    key: str
    args: dict[str, str] = field(default_factory=dict)
    cmd_set: bool = False
    workdir_pending: tuple[str, ...] = ()  # WORKDIRs whose directories no step made yet
    workdir_entry: int | None = None  # the pending WORKDIR's history entry
    #: the last image of this stage that is stored (its base, a step's): the next one's parent
    stored: str | None = None
    #: legacy builds: the keys of the metadata steps since the last filesystem step, cached (as a
    #: marker) under the image the next one makes
    meta_keys: list[str] = field(default_factory=list)


class _Build:
    def __init__(
        self,
        *,
        request: BuildRequest,
        engine: Engine,
        steps: StepContainers,
        context: BuildContext,
        progress: Progress,
        root: str,
    ) -> None:
        self.request = request
        self.engine = engine
        self.images: ImageStore = engine.images
        self.steps = steps
        self.context = context
        self.progress = progress
        self.root = root
        self.cache = BuildCache(root)
        self.dockerfile = df.parse(context.dockerfile, name=context.dockerfile_name)
        self.escape = self.dockerfile.directives.escape
        self.done: dict[int, StageImage] = {}
        self.global_args: dict[str, str] = dict(PLATFORM_ARGS)
        self.cached = 0
        self.ran = 0
        self.epoch = _source_date_epoch(request.build_args)
        self.inline_cache = self._inline_cache()
        self.inline_records: list[dict[str, object]] = []
        self.step: Step | None = None  # the step being dispatched
        for arg in self.dockerfile.global_args:
            for decl in arg.decls:
                self.global_args[decl.name] = self._arg_value(decl, self.global_args, self.global_args)
        for name in request.build_args:
            if name in PROXY_ARGS:
                self.global_args.setdefault(name, request.build_args[name])

    # --- values -------------------------------------------------------------------------------

    def _arg_value(self, decl: df.ArgDecl, env: Mapping[str, str], inherited: Mapping[str, str]) -> str:
        if decl.name in self.request.build_args:
            return self.request.build_args[decl.name]
        if decl.default is not None:
            return self._expand(decl.default, env)
        return inherited.get(decl.name, "")

    def _expand(self, text: str, env: Mapping[str, str], line: int | None = None) -> str:
        try:
            return expand_word(text, env, self.escape)
        except ExpansionError as e:
            where = f"{self.context.dockerfile_name}:{line}: " if line else ""
            raise InvalidArgument(f"{where}{e}") from None

    def _expand_words(self, text: str, env: Mapping[str, str], line: int) -> list[str]:
        try:
            return expand_words(text, env, self.escape)
        except ExpansionError as e:
            raise InvalidArgument(f"{self.context.dockerfile_name}:{line}: {e}") from None

    @staticmethod
    def _scope(stage: _Stage) -> dict[str, str]:
        """What variables expand to at a step: the stage's args, overridden by its ENV."""
        return {**stage.args, **stage.image.env}

    # --- stages ---------------------------------------------------------------------------------

    def target_stage(self) -> df.Stage:
        if self.request.target is None:
            return self.dockerfile.stages[-1]
        found = self.dockerfile.stage(self.request.target)
        if found is None or (found.name is None and not self.request.target.isdigit()):
            raise InvalidArgument(f"failed to reach build target {self.request.target} in Dockerfile")
        return found

    def base_name(self, stage: df.Stage) -> str:
        return self._expand(stage.base.image, self.global_args, stage.base.line)

    def stage_ref(self, ref: str, before: int) -> df.Stage | None:
        found = self.dockerfile.stage(ref)
        if found is not None and found.index < before and (found.name is not None or ref.isdigit()):
            return found
        return None

    def needed(self, target: df.Stage) -> list[df.Stage]:
        """The stages ``target`` depends on, and itself, in file order."""
        wanted: set[int] = set()
        todo = [target]
        while todo:
            stage = todo.pop()
            if stage.index in wanted:
                continue
            wanted.add(stage.index)
            refs = [self.base_name(stage)]
            for instruction in stage.instructions:
                if isinstance(instruction, df.Copy) and instruction.from_:
                    refs.append(self._expand(instruction.from_, self.global_args, instruction.line))
                if isinstance(instruction, df.Run):
                    refs += [m.from_ for m in instruction.mounts if m.from_]
            for ref in refs:
                dep = self.stage_ref(ref, stage.index)
                if dep is not None:
                    todo.append(dep)
        return [s for s in self.dockerfile.stages if s.index in wanted]

    def run(self) -> _Stage:
        target = self.target_stage()
        last: _Stage | None = None
        for stage in self.needed(target):
            last = self.run_stage(stage)
            self.done[stage.index] = last.image
        assert last is not None
        return last

    def stage_label(self, stage: df.Stage) -> str:
        if stage.name:
            return stage.name
        return f"stage-{stage.index}" if len(self.dockerfile.stages) > 1 else ""

    def run_stage(self, stage: df.Stage) -> _Stage:
        label = self.stage_label(stage)
        total = len(stage.instructions) + 1
        prefix = f"{label} " if label else ""
        name = self.base_name(stage)
        platform = stage.base.platform
        if platform:
            check_platform(self._expand(platform, self.global_args, stage.base.line))
        step = self.progress.step(f"[{prefix}1/{total}] FROM {name}")
        image = self.base_image(name, stage.index, step)
        step.done()
        state = _Stage(
            index=stage.index,
            label=label,
            image=image,
            key=step_key("", f"FROM {image.image_id or 'scratch'}"),
            stored=image.image_id,
        )
        triggers = tuple(image.run.on_build or ())
        if triggers:
            state.image = replace(
                image, config=image.config.replace(config=image.run.replace(on_build=None)), image_id=None
            )
            for expression in triggers:
                trigger = (
                    df.parse(f"FROM scratch\n{expression}\n", name=f"ONBUILD in {name}")
                    .stages[0]
                    .instructions[0]
                )
                step = self.progress.step(f"[{prefix}1/{total}] ONBUILD {expression}")
                self.dispatch(state, trigger, step)
        for number, instruction in enumerate(stage.instructions, start=2):
            step = self.progress.step(f"[{prefix}{number}/{total}] {_title(instruction)}")
            self.dispatch(state, instruction, step)
        if state.workdir_pending:
            # no later step made the directories: a step of its own does, in place of WORKDIR's empty entry
            path = state.workdir_pending[-1]
            made = " ".join(state.workdir_pending)
            history = state.image.config.history
            if state.workdir_entry is not None and state.workdir_entry < len(history):
                kept = history[: state.workdir_entry] + history[state.workdir_entry + 1 :]
                state.image = replace(
                    state.image, config=state.image.config.replace(history=kept), image_id=None
                )
            step = self.progress.step(f"[{prefix}{total}/{total}] WORKDIR {path}")
            self.fs_step(
                state=state, step=step, key_text=f"mkdir {made}", action=None, created_by=f"WORKDIR {path}"
            )
            step.done()
        return state

    def base_image(self, name: str, index: int, step: Step) -> StageImage:
        if name.lower() == "scratch":
            return scratch()
        dep = self.stage_ref(name, index)
        if dep is not None:
            return self.done[dep.index]
        return from_image(self.images, self.pull(name, step))

    def pull(self, name: str, step: Step) -> str:
        """The id of image ``name``, pulled when missing here (or always with ``--pull``)."""
        if not self.request.pull:
            with contextlib.suppress(NotFound):
                return str(self.images.resolve(name).id)
        from pathlib import Path

        from pallet.oci.reference import parse
        from pallet.registry.client import credentials, hosts
        from pallet.registry.client.progress import open_progress
        from pallet.registry.client.pull import pull
        from pallet.registry.client.sources import BlobSources
        from pallet.registry.client.transport import Transport

        reference = parse(name)
        step.note(f"pulling {reference.familiar_string()}")
        transport = Transport(insecure=hosts.insecure_list(Path(self.root)))
        sources = BlobSources(Path(self.root))
        sink = _NullText()
        try:
            pull(
                self.images,
                reference,
                transport=transport,
                credentials=self.request.registry_auth.get(reference.domain)
                or credentials.lookup(reference.domain),
                progress=open_progress(sink, quiet=True),  # type: ignore[arg-type]
                sources=sources,
            )
        except PalletError as e:
            raise type(e)(f"failed to resolve source metadata for {name}: {e}") from None
        finally:
            sources.close()
            transport.close()
        return str(self.images.resolve(name).id)

    # --- instructions -------------------------------------------------------------------------

    def now(self) -> str:
        return format_time(self.epoch * 1_000_000_000 if self.epoch is not None else None)

    def meta(self, state: _Stage, run: ContainerConfig, created_by: str, key_text: str | None = None) -> None:
        state.image = state.image.with_run(run, created_by, self.now())
        state.key = step_key(state.key, key_text or created_by)
        if self.request.legacy:
            # docker's legacy builder makes an image of every step and finds it in its cache:
            # ``Using cache`` for an ENV too. Its marker is written with the next step's image.
            if self.step is not None and not self.request.no_cache and self._meta_cached(state.key):
                self.step.cached()
                self.cached += 1
            state.meta_keys.append(state.key)
            self.record(state.key, state.image)

    def _meta_cached(self, key: str) -> bool:
        if key in self.inline_cache:
            return True
        return not self.request.cache_from and self.cache.get(self.images, key) is not None

    def _mark_meta(self, state: _Stage, image_id: str) -> None:
        """The metadata steps before this image are cached with it (legacy builds)."""
        for key in state.meta_keys:
            self.cache.put(key, image_id)
        state.meta_keys.clear()

    def dispatch(self, state: _Stage, instruction: df.Instruction, step: Step) -> None:
        self.step = step
        try:
            self._dispatch(state, instruction, step)
        except PalletError as e:
            step.error(str(e))
            raise
        else:
            step.done()
        finally:
            self.step = None

    def _dispatch(self, state: _Stage, ins: df.Instruction, step: Step) -> None:
        env = self._scope(state)
        run = state.image.run
        line = ins.line
        if isinstance(ins, df.Env):
            current = dict(state.image.env)
            parts = []
            for name, value in ins.pairs:
                key = self._expand(name, env, line)
                val = self._expand(value, env, line)
                if not key:
                    raise InvalidArgument(
                        f"{self.context.dockerfile_name}:{line}: ENV names can not be blank"
                    )
                current.pop(key, None)
                current[key] = val
                parts.append(f"{key}={val}")
            ordered = dict((e.partition("=")[0], e.partition("=")[2]) for e in run.env or ())
            ordered.update(current)
            self.meta(
                state,
                run.replace(env=tuple(f"{k}={v}" for k, v in ordered.items())),
                "ENV " + " ".join(parts),
            )
        elif isinstance(ins, df.Arg):
            parts = []
            for decl in ins.decls:
                value = self._arg_value(decl, env, self.global_args)
                state.args[decl.name] = value
                parts.append(
                    f"{decl.name}={value}"
                    if decl.default is not None or decl.name in self.request.build_args
                    else decl.name
                )
            state.image = state.image.with_run(run, "ARG " + " ".join(parts), self.now())
            state.key = step_key(
                state.key, "ARG " + " ".join(f"{d.name}={state.args[d.name]}" for d in ins.decls)
            )
        elif isinstance(ins, df.Label):
            labels = dict(run.labels)
            parts = []
            for name, value in ins.pairs:
                key, val = self._expand(name, env, line), self._expand(value, env, line)
                labels[key] = val
                parts.append(f"{key}={val}")
            self.meta(state, run.replace(labels=labels), "LABEL " + " ".join(parts))
        elif isinstance(ins, df.Maintainer):
            state.image = replace(
                state.image, config=state.image.config.replace(author=ins.name), image_id=None
            )
            self.meta(state, run, f"MAINTAINER {ins.name}")
        elif isinstance(ins, df.Expose):
            ports = dict.fromkeys(run.exposed_ports or ())
            for word in ins.ports:
                for port in self._expand_words(word, env, line):
                    for one in _port(port, self.context.dockerfile_name, line):
                        ports[one] = None
            self.meta(
                state,
                run.replace(exposed_ports=tuple(ports)),
                "EXPOSE " + " ".join(f"map[{p}:{{}}]" for p in ports),
            )
        elif isinstance(ins, df.Volume):
            volumes = dict.fromkeys(run.volumes or ())
            new = [self._expand(p, env, line) for p in ins.paths]
            volumes.update(dict.fromkeys(new))
            self.meta(state, run.replace(volumes=tuple(volumes)), f"VOLUME [{' '.join(new)}]")
        elif isinstance(ins, df.User):
            self.meta(
                state,
                run.replace(user=self._expand(ins.user, env, line)),
                f"USER {self._expand(ins.user, env, line)}",
            )
        elif isinstance(ins, df.StopSignal):
            signal = self._expand(ins.signal, env, line)
            self.meta(state, run.replace(stop_signal=signal), f"STOPSIGNAL {signal}")
        elif isinstance(ins, df.Workdir):
            path = self._expand(ins.path, env, line)
            # docker's NormalizeWorkdir: a relative path joins the current one (cleaned), an absolute one is kept
            full = (
                path
                if path.startswith("/")
                else posixpath.normpath(posixpath.join(run.working_dir or "/", path))
            )
            self.meta(state, run.replace(working_dir=full), f"WORKDIR {full}")
            state.workdir_pending = (*state.workdir_pending, full)  # docker makes each one
            state.workdir_entry = len(state.image.config.history) - 1
        elif isinstance(ins, df.Shell):
            self.meta(state, run.replace(shell=ins.shell), f"SHELL [{' '.join(ins.shell)}]")
        elif isinstance(ins, df.Cmd):
            cmd = ins.command_line if ins.json else (*state.image.shell, ins.command_line[0])
            state.cmd_set = True
            self.meta(state, run.replace(cmd=cmd), f"CMD {json.dumps(list(cmd))}")
        elif isinstance(ins, df.Entrypoint):
            entry = ins.command_line if ins.json else (*state.image.shell, ins.command_line[0])
            changed = run.replace(entrypoint=entry or None)
            if not state.cmd_set:
                changed = changed.replace(cmd=None)
            self.meta(state, changed, f"ENTRYPOINT {json.dumps(list(entry))}")
        elif isinstance(ins, df.Healthcheck):
            self.meta(
                state,
                run.replace(healthcheck=_healthcheck(ins, run)),
                ins.original.split(None, 1)[0].upper() + " " + ins.original.split(None, 1)[1],
            )
        elif isinstance(ins, df.Onbuild):
            self.meta(
                state,
                run.replace(on_build=(*(run.on_build or ()), ins.expression)),
                f"ONBUILD {ins.expression}",
            )
        elif isinstance(ins, df.Run):
            self.run_step(state, ins, step)
        elif isinstance(ins, df.Copy):
            self.copy_step(state, ins, step)
        else:
            raise Unsupported(
                f"{self.context.dockerfile_name}:{line}: {ins.command.upper()} is not supported"
            )

    # --- filesystem steps -----------------------------------------------------------------------

    def lookup(self, key: str, step: Step) -> StageImage | None:
        if self.request.no_cache:
            return None
        # the legacy builder with cache_from trusts only those images' steps
        legacy_sources = self.request.legacy and self.request.cache_from
        found = None if legacy_sources else self.cache.get(self.images, key)
        if found is not None:
            step.cached()
            self.cached += 1
            return from_image(self.images, found)
        inline = self.inline_cache.get(key)
        if inline is not None:
            step.cached()
            self.cached += 1
            return inline
        return None

    def fs_step(
        self,
        *,
        state: _Stage,
        step: Step,
        key_text: str,
        action: _Action | None,
        created_by: str,
        run_config: ContainerConfig | None = None,
    ) -> None:
        """A step that makes a layer: from the cache, or in a step container (``action`` works on it)."""
        key = step_key(state.key, key_text)
        hit = self.lookup(key, step)
        if hit is not None:
            state.image, state.key = hit, key
            state.stored = hit.image_id
            state.workdir_pending = ()
            self.record(key, hit)
            if hit.image_id is not None:
                self._mark_meta(state, str(hit.image_id))
            return
        base = materialize(self.images, state.image)
        self._child(str(base.image_id), state)
        config = run_config if run_config is not None else base.run
        record = self.steps.create(
            str(base.image_id),
            action.options if action is not None and action.options is not None else _plain_options(base),
        )
        try:
            if state.workdir_pending:
                with self.steps.root(record) as root_fd:
                    for path in state.workdir_pending:
                        _mkdir_p(root_fd, path)
            if action is not None:
                action.apply(self, record, step)
            committed = self.steps.commit(
                record,
                str(base.image_id),
                config,
                created_by or key_text,
                clamp_mtime_ns=self.epoch * 1_000_000_000 if self.epoch is not None else None,
            )
        finally:
            self.steps.remove(record)
        self.ran += 1
        self._child(str(committed.id), state)
        state.image = from_image(self.images, str(committed.id))
        state.workdir_pending = ()
        state.key = key
        self.cache.put(key, str(committed.id))
        self._mark_meta(state, str(committed.id))
        self.record(key, state.image)

    def _child(self, image_id: str, state: _Stage) -> None:
        """``image_id`` is the stage's newest stored image: its parent is the one before (docker's
        Parent), which makes that one an intermediate image (``pallet images`` shows it with ``-a``)."""
        if state.stored is not None and state.stored != image_id:
            self.images.set_parent(image_id, state.stored)
        state.stored = image_id

    def record(self, key: str, image: StageImage) -> None:
        """Remember a step for the inline cache the target image carries (``--cache-from``)."""
        self.inline_records.append(
            {
                "key": key,
                "layers": len(image.layers),
                "history": len(image.config.history),
                "config": image.run.to_json(),
            }
        )

    def run_step(self, state: _Stage, ins: df.Run, step: Step) -> None:
        env = self._scope(state)
        image = state.image
        if ins.json:
            command: tuple[str, ...] = ins.command_line
        else:
            command = (*image.shell, _shell_text(ins))
        network = ins.network or self.request.network
        args = {k: v for k, v in state.args.items() if k not in image.env}
        for name in PROXY_ARGS:
            if name in self.request.build_args:
                args.setdefault(name, self.request.build_args[name])
        mounts = [self._mount(m, env, ins.line) for m in ins.mounts]
        shown = " ".join(command)
        key_text = json.dumps(
            {
                "run": command,
                "network": network,
                "args": sorted(args.items()),
                "mounts": [repr(m) for m in ins.mounts],
            }
        )
        action = _RunAction(
            build=self,
            state=state,
            command=command,
            env={**args, **image.env},
            network=network,
            mounts=mounts,
            ins=ins,
        )
        self.fs_step(
            state=state,
            step=step,
            key_text=key_text,
            action=action,
            created_by=f"RUN {shown} # buildkit",
            run_config=image.run,
        )

    def _mount(self, mount: df.Mount, env: Mapping[str, str], line: int) -> df.Mount:
        def x(value: str | None) -> str | None:
            return self._expand(value, env, line) if value is not None else None

        return replace(
            mount, target=x(mount.target), source=x(mount.source), from_=x(mount.from_), id=x(mount.id)
        )

    def copy_step(self, state: _Stage, ins: df.Copy, step: Step) -> None:
        from pallet.build.copying import stage_sources
        from pallet.build.remote import fetch, is_remote

        env = self._scope(state)
        line = ins.line
        is_add = isinstance(ins, df.Add)
        heredoc_names = {h.name: h for h in ins.heredocs}
        sources: list[tuple[object, str]] = []
        heredocs: dict[int, tuple[str, bytes, int]] = {}
        from_ref = self._expand(ins.from_, env, line) if ins.from_ else None
        cleanup = contextlib.ExitStack()
        tree = self._source_tree(from_ref, cleanup, line) if from_ref else self.context.tree
        with cleanup:
            for position, source in enumerate(ins.sources):
                opener = _heredoc_name(source)
                if opener is not None and opener in heredoc_names:
                    doc = heredoc_names[opener]
                    data = doc.data
                    if doc.expand:
                        data = self._expand_heredoc(data, env)
                    heredocs[position] = (opener, data.encode(), 0o644)
                    sources.append((tree, source))
                    continue
                expanded = self._expand(source, env, line)
                if is_add and is_remote(expanded):
                    assert isinstance(ins, df.Add)
                    try:
                        fetched, data_bytes = fetch(expanded, ins.checksum)
                    except PalletError as e:
                        raise type(e)(f"{self.context.dockerfile_name}:{line}: {e}") from None
                    heredocs[position] = (fetched, data_bytes, 0o600)
                    sources.append((tree, expanded))
                    continue
                if isinstance(ins, df.Add) and ins.checksum:
                    raise InvalidArgument(
                        f"{self.context.dockerfile_name}:{line}: --checksum can only be used with a URL source"
                    )
                sources.append((tree, expanded))
            dest = self._expand(ins.dest, env, line)
            if not dest.startswith("/"):
                base_dir = state.image.run.working_dir or "/"
                trailing = dest.endswith("/") or dest in (".", "./")
                dest = posixpath.join(base_dir, dest)
                dest = posixpath.normpath(dest) + ("/" if trailing else "")
            staged = stage_sources(
                sources,  # type: ignore[arg-type]
                heredocs=heredocs,
                unpack=isinstance(ins, df.Add) and ins.unpack is not False,
                parents=ins.parents,
                excludes=tuple(self._expand(e, env, line) for e in ins.exclude),
            )
        word = "ADD" if is_add else "COPY"
        flags = " ".join(ins.flags)
        shown_sources = " ".join(s for _, s in sources)
        key_text = json.dumps(
            {
                "op": word,
                "dest": dest,
                "chown": ins.chown,
                "chmod": ins.chmod,
                "parents": ins.parents,
                "content": staged.digest,
            }
        )
        action = _CopyAction(staged, dest, ins, self.epoch)
        created_by = f"{word} {flags + ' ' if flags else ''}{shown_sources} {ins.dest} # buildkit"
        with staged.tar:
            self.fs_step(state=state, step=step, key_text=key_text, action=action, created_by=created_by)

    def _source_tree(self, ref: str, cleanup: contextlib.ExitStack, line: int) -> SourceTree:
        """The root of another stage or an image, for COPY --from and RUN --mount=from= (a created step
        container's root, open until ``cleanup`` closes; the container goes then too)."""
        from pallet.build.sources import SourceTree

        stage = self.stage_ref(ref, 1 << 30)
        if stage is not None and stage.index in self.done:
            image = materialize(self.images, self.done[stage.index])
        elif stage is not None:
            raise InvalidArgument(
                f"{self.context.dockerfile_name}:{line}: COPY --from={ref}: the stage is defined later in the file"
            )
        else:
            step = self.progress.step(f"[internal] load image {ref}")
            image = from_image(self.images, self.pull(ref, step))
            step.done()
        record = self.steps.create(str(image.image_id), _plain_options(image))
        cleanup.callback(self.steps.remove, record)
        root_fd = cleanup.enter_context(self.steps.root(record))
        return SourceTree(root_fd, None, f"stage {ref}", confined=False)

    def _expand_heredoc(self, data: str, env: Mapping[str, str]) -> str:
        # docker expands a heredoc body as a double-quoted string would be: variables only
        try:
            return expand_word('"' + data.replace("\\", "\\\\").replace('"', '\\"') + '"', env, "\\")
        except ExpansionError:
            return data

    # --- inline cache (--cache-from) ------------------------------------------------------------

    def _inline_cache(self) -> dict[str, StageImage]:
        """Steps recorded in ``--cache-from`` images (``pallet.build.cache`` in their config)."""
        found: dict[str, StageImage] = {}
        for name in self.request.cache_from:
            try:
                image = from_image(self.images, str(self.images.resolve(name).id))
            except NotFound:
                continue
            for entry in image.config.extra.get(CACHE_KEY) or ():
                if not isinstance(entry, dict):
                    continue
                try:
                    layers, history = int(entry["layers"]), int(entry["history"])
                    run = ContainerConfig.from_json(entry["config"])
                except (KeyError, TypeError, ValueError, PalletError):
                    continue
                config = image.config.replace(
                    config=run,
                    history=image.config.history[:history],
                    rootfs=image.config.rootfs.replace(diff_ids=image.config.rootfs.diff_ids[:layers]),
                    extra={k: v for k, v in image.config.extra.items() if k != CACHE_KEY},
                )
                found[str(entry["key"])] = StageImage(
                    config=config, layers=image.layers[:layers], docker=image.docker
                )
        return found


CACHE_KEY = "pallet.build.cache"


class _Action:
    """What a filesystem step does in its container."""

    options: RunOptions | None = None

    def apply(self, build: _Build, record: object, step: Step) -> None:
        raise NotImplementedError


class _CopyAction(_Action):
    def __init__(self, staged: object, dest: str, ins: df.Copy, epoch: int | None) -> None:
        self.staged = staged
        self.dest = dest
        self.ins = ins
        self.epoch = epoch

    def apply(self, build: _Build, record: object, step: Step) -> None:
        from pallet.build.copying import parse_chmod, place, resolve_owner

        with build.steps.root(record) as root_fd:  # type: ignore[arg-type]
            owner = (
                resolve_owner(root_fd, build._expand(self.ins.chown, {}, self.ins.line))
                if self.ins.chown
                else None
            )
            place(
                self.staged,  # type: ignore[arg-type]
                root_fd,
                self.dest,
                owner=owner,
                chmod=parse_chmod(self.ins.chmod),
                parents=self.ins.parents,
                mtime_ns=self.epoch * 1_000_000_000 if self.epoch is not None else None,
            )


class _RunAction(_Action):
    def __init__(
        self,
        *,
        build: _Build,
        state: _Stage,
        command: tuple[str, ...],
        env: Mapping[str, str],
        network: str,
        mounts: list[df.Mount],
        ins: df.Run,
    ) -> None:
        from pallet.build.containers import options_for
        from pallet.build.mounts import run_mounts

        self.ins = ins
        self.command = command
        self.binds, self.tmpfs, extra_env, self.cleanup = run_mounts(build, mounts, ins.line)
        image = state.image
        self.options = options_for(
            cmd=command,
            env={**env, **extra_env},
            workdir=image.run.working_dir or "/",
            user=image.run.user or "",
            network=network,
            binds=self.binds,
            tmpfs=self.tmpfs,
            extra_hosts=build.request.extra_hosts,
        )

    def apply(self, build: _Build, record: object, step: Step) -> None:
        try:
            code = build.steps.run(record, step.output, step.output_stderr)  # type: ignore[arg-type]
        finally:
            self.cleanup()
        step.flush()
        if code != 0:
            shown = " ".join(self.command)
            tail = "\n".join(f"  {line}" for line in step.tail[-10:])
            where = f"{build.context.dockerfile_name}:{self.ins.line}"
            raise Unknown(
                f'{where}: process "{shown}" did not complete successfully: exit code: {code}'
                + (f"\n{tail}" if tail else "")
            )


def _plain_options(image: StageImage | None) -> RunOptions:
    from pallet.build.containers import options_for

    return options_for(cmd=("/nonexistent",), env={}, workdir="/", user="", network="none")


def _mkdir_p(root_fd: int, path: str) -> None:
    from pallet.linux.openat2 import open_in_root

    current = ""
    for part in [p for p in path.split("/") if p]:
        current = f"{current}/{part}"
        try:
            fd = open_in_root(root_fd, current.lstrip("/"), os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            parent = open_in_root(
                root_fd,
                posixpath.dirname(current).lstrip("/") or ".",
                os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
            )
            try:
                os.mkdir(part, 0o755, dir_fd=parent)
                os.chmod(f"/proc/self/fd/{parent}/{part}", 0o755)
            finally:
                os.close(parent)
        else:
            os.close(fd)


def _heredoc_name(source: str) -> str | None:
    from pallet.build.dockerfile.heredocs import parse_opener

    opener = parse_opener(source)
    return opener.name if opener is not None else None


def _shell_text(ins: df.Run) -> str:
    """A shell-form RUN's text with its heredocs, as BuildKit hands it to the shell."""
    text = ins.command_line[0]
    if not ins.heredocs:
        return text
    if len(ins.heredocs) == 1 and _heredoc_name(text.strip()) == ins.heredocs[0].name:
        return ins.heredocs[0].data  # RUN <<EOF: the body is the script
    full = text
    for doc in ins.heredocs:
        full += "\n" + doc.content + doc.name
    return full


def _title(ins: df.Instruction) -> str:
    keyword, _, rest = ins.original.partition(" ")
    return f"{keyword.upper()} {rest.strip()}".strip()


def _port(word: str, name: str, line: int) -> list[str]:
    """``80``, ``53/udp``, ``8080-8082`` as docker's ExposedPorts keys (a range is every port in it)."""
    port, _, proto = word.partition("/")
    proto = (proto or "tcp").lower()
    first, _, last = port.partition("-")
    if not first.isdigit() or (last and not last.isdigit()) or proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"{name}:{line}: invalid containerPort: {word}")
    end = int(last) if last else int(first)
    if end < int(first) or end > 65535:
        raise InvalidArgument(f"{name}:{line}: invalid port range: {word}")
    return [f"{p}/{proto}" for p in range(int(first), end + 1)]


def _healthcheck(ins: df.Healthcheck, run: ContainerConfig) -> Healthcheck:
    if ins.test == ("NONE",):
        return Healthcheck(test=("NONE",))
    return Healthcheck(
        test=ins.test,
        interval=ins.interval if ins.interval is not None else None,
        timeout=ins.timeout,
        start_period=ins.start_period,
        start_interval=ins.start_interval,
        retries=ins.retries,
    )


def _source_date_epoch(args: Mapping[str, str]) -> int | None:
    text = args.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH")
    if not text:
        return None
    if not text.isdigit():
        raise InvalidArgument(f"SOURCE_DATE_EPOCH must be a number of seconds, not {text!r}")
    return int(text)


class _NullText:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _finish(build: _Build, stage: _Stage, request: BuildRequest) -> StageImage:
    """The target's image as stored: ``--label``s, the inline cache record, ``SOURCE_DATE_EPOCH``.

    Cached under the last step's key, so an unchanged build gives the same image id again.
    """
    key = step_key(stage.key, "final", sorted(request.labels.items()))
    if not request.no_cache:
        found = build.cache.get(build.images, key)
        if found is not None:
            build._mark_meta(stage, found)
            return from_image(build.images, found)
    image = stage.image
    extra = {k: v for k, v in image.config.extra.items() if k != CACHE_KEY}
    if build.inline_records:
        extra[CACHE_KEY] = build.inline_records
    image = replace(image, config=image.config.replace(extra=extra), image_id=None)
    run = image.run
    if request.labels:
        run = run.replace(labels={**run.labels, **request.labels})
        image = replace(image, config=image.config.replace(config=run), image_id=None)
    if build.epoch is not None:
        image = image.with_created(format_time(build.epoch * 1_000_000_000))
    stored = materialize(build.images, image)
    build._child(str(stored.image_id), stage)
    build.cache.put(key, str(stored.image_id))
    build._mark_meta(stage, str(stored.image_id))
    return stored


def build(
    request: BuildRequest,
    *,
    root: str,
    run_root: str,
    out: TextIO | None,
    stdin: BinaryIO | None = None,
    stderr: Callable[[str], None] | None = None,
) -> BuildResult:
    """Run a build (see the module docstring); progress lines to ``out`` (None: quiet); what a RUN
    writes to its stderr to ``stderr`` when given (as written), else into the progress."""
    from pallet.build.containers import StepContainers
    from pallet.build.context import open_context, remove_abandoned_contexts
    from pallet.build.progress import Progress
    from pallet.engine.containers.lifecycle import Engine
    from pallet.engine.service import Service, sweep_owned

    if request.platform:
        check_platform(request.platform)
    if request.extra_hosts:
        from pallet.engine.spec.syntax import parse_extra_host

        for entry in request.extra_hosts:  # a bad one fails before any work
            parse_extra_host(entry)
    tty = request.progress == "tty" or (
        request.progress == "auto" and out is not None and getattr(out, "isatty", lambda: False)()
    )
    progress = Progress(out, tty=tty, stderr=stderr)
    for tag in request.tags:
        from pallet.oci.reference import parse

        parse(tag)  # a bad tag fails before any work
    sweep_owned(root, run_root)  # step containers of killed builds
    engine = Engine.open(root, run_root)
    service = Service(engine)
    with service:
        remove_abandoned_contexts(root)
        step = progress.step("[internal] load build definition from " + (request.dockerfile or "Dockerfile"))
        context = open_context(request.context, dockerfile=request.dockerfile, pallet_root=root, stdin=stdin)
        step.done()
        steps = StepContainers(engine, service)
        try:
            with context:
                runner = _Build(
                    request=request, engine=engine, steps=steps, context=context, progress=progress, root=root
                )
                final = runner.run()
                step = progress.step("exporting to image")
                image = _finish(runner, final, request)
                step.note(f"writing image sha256:{str(image.image_id).removeprefix('sha256:')} done")
                tags = []
                for tag in request.tags:
                    ref = engine.images.tag(str(image.image_id), tag)
                    tags.append(str(ref))
                    step.note(f"naming to {ref} done")
                step.done()
                for output in request.outputs:
                    from pallet.build.export import export

                    export(runner, image, output)
        finally:
            steps.close()
    return BuildResult(
        image_id=str(image.image_id), tags=tuple(tags), cached_steps=runner.cached, run_steps=runner.ran
    )
