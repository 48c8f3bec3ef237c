"""The README and docs/ against the code: every task, preset and command they name exists,
the README lists every analysis task, and its "Add an analysis" example runs as written."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf, open_dict

from fmnist.cli import COMMANDS
from fmnist.config import CONF_DIR
from fmnist.data import load_fashion_mnist
from fmnist.data.classes import CLASS_NAMES
from fmnist.tasks import run_analysis
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Where commands, tasks and presets are named for people to type.
TEXTS = [README, *sorted((ROOT / "docs").glob("**/*.md")), ROOT / "analyze.py",
         ROOT / "fmnist/cli.py", CONF_DIR / "analyze.yaml", CONF_DIR / "train.yaml"]  # fmt: skip
#: Config groups chosen as `group=name` on a command line.
GROUPS = ("task", "experiment", "hparams_search", "model", "trainer", "logger", "callbacks")
#: Names a text may give that are not options on purpose.
EXAMPLES = {("task", "brightness"), ("experiment", "speeedrun"), ("task", "typo")}


def options(group: str) -> set[str]:
    return {path.stem for path in (CONF_DIR / group).glob("*.yaml")}


def section(text: str, heading: str) -> str:
    """The text of a ``## heading`` section, up to the next one."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_readme_lists_exactly_the_analysis_tasks_with_their_first_lines() -> None:
    table = section(README.read_text(), "Analyses")
    listed = dict(re.findall(r"^\| `(\w+)` \| (.*) \|$", table, re.M))
    assert set(listed) == options("task")
    for name, summary in listed.items():
        first = (CONF_DIR / "task" / f"{name}.yaml").read_text().split("\n", 1)[0]
        assert first == f"# task={name}: {summary}"
        assert not set(summary) & set("<>*_`"), "Markdown would read these as tags or emphasis"


def test_every_named_option_and_command_exists() -> None:
    named: dict[tuple[str, str], list[str]] = {}
    for path in TEXTS:
        text = path.read_text()
        for group in GROUPS:
            for name in re.findall(rf"(?<![\w.]){group}=([a-z_]\w*)", text):
                named.setdefault((group, name), []).append(path.name)
        for name in re.findall(r"python -m fmnist\.cli ([a-z][\w-]*)", text):
            named.setdefault(("command", name), []).append(path.name)
        for name in re.findall(r"(?<![\w-])fmnist-([a-z][\w-]*)", text):
            named.setdefault(("command", name), []).append(path.name)
    assert ("task", "compare") in named and ("command", "predict") in named  # the scan reads
    missing = {
        key: where
        for key, where in named.items()
        if key not in EXAMPLES
        and (key[1] not in COMMANDS if key[0] == "command" else key[1] not in options(key[0]))
    }
    assert missing == {}


def test_the_commands_are_the_console_scripts_and_the_top_level_configs() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {f"fmnist-{name}": f"fmnist.cli:{f.__name__}" for name, f in COMMANDS.items()}
    # Every top-level config is a command's (train, analyze, predict, export, serve).
    assert {path.stem for path in CONF_DIR.glob("*.yaml")} <= set(COMMANDS)


def readme_example(language: str) -> str:
    """The ``language`` code block of the README's "Add an analysis", unindented."""
    text = section(README.read_text(), "Add an analysis")
    block = re.search(rf"^( *)```{language}\n(.*?)^\1```", text, re.M | re.S)
    assert block, f"no {language} block"
    indent = len(block[1])
    return "\n".join(line[indent:] for line in block[2].splitlines()) + "\n"


def test_the_readme_example_task_runs_as_written(
    tmp_path: Path, fake_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("fmnist.tasks.brightness")
    exec(compile(readme_example("python"), "README.md", "exec"), module.__dict__)  # noqa: S102
    monkeypatch.setitem(sys.modules, "fmnist.tasks.brightness", module)
    overrides = ["data.search_system=false", "data.download=false", "data.strict=false"]
    cfg = compose_config("analyze", [*overrides, "task=eda"], tmp_path, fake_data_dir)
    task = OmegaConf.create(readme_example("yaml"))
    assert task._target_ == "fmnist.tasks.brightness.brightness_task"
    with open_dict(cfg):
        cfg.task = task
        cfg.task.threshold = 64
    report = run_analysis(cfg).read_text()

    raw = load_fashion_mnist(fake_data_dir, download=False, strict=False, search_system=False)
    images = np.concatenate([raw.train_images.numpy(), raw.test_images.numpy()])
    labels = np.concatenate([raw.train_labels.numpy(), raw.test_labels.numpy()])
    share = (images > 64).mean(axis=(1, 2))
    assert "share of pixels > 64" in report
    for k, name in enumerate(CLASS_NAMES):
        assert f"| {name} | {share[labels == k].mean():.3f} |" in report


def test_every_relative_link_of_the_pages_leads_to_a_file() -> None:
    broken = []
    for page in [README, *sorted((ROOT / "docs").glob("**/*.md"))]:
        for target in re.findall(r"\]\((?!https?:|#)([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []
