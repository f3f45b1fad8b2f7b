"""Property: whatever a config file or a `--set` says, the result is a valid config or the project's own error.

A mutated valid file must never raise anything but ConfigError/UserError (which the command line turns into
one line and exit 2), every error line must name its source, and whatever validates must round-trip.
"""

from __future__ import annotations

import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_lab.core.config import (
    SECTIONS,
    LabConfig,
    dumps_config,
    loads_config,
    with_overrides,
)
from tui_lab.core.errors import UserError
from tui_lab.core.presets import bundled_dir

SOURCE = "fuzz.toml"
SEEDS = [dumps_config(LabConfig())] + [
    path.read_text(encoding="utf-8") for path in sorted(bundled_dir().glob("*.toml"))
]
KEYS = ["title", "lesson", "seed", "translations", "translations.pt.title"] + [
    f"{section}.{key}" for section, model in SECTIONS.items() for key in model.model_fields
]

RAW_KIND = re.compile(r": [a-z]+(_[a-z]+)+$", re.MULTILINE)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that matter to TOML's grammar, plus some ordinary and some awkward ones.
TOML_CHARS = "[]{}=\"'.,#\n\t -+_:\\" + string.ascii_letters + string.digits + "é∇\x00\x7f"
toml_text = st.text(alphabet=TOML_CHARS, max_size=12)

# TOML scalars and small compound values, written as TOML.
toml_scalar = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda x: "nan" if x != x else ("inf" if x == float("inf") else "-inf" if x == float("-inf") else repr(x))
    ),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=8).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(["relu", "he_normal", "cuda:1", "1979-05-27", "07:32:00", "1979-05-27T07:32:00Z"]),
    st.sampled_from(['"glorot_uniform"', '"Kaiming-Normal"', '"rleu"', "[]", "[1, 2]", "{}", "{ a = 1 }"]),
    st.sampled_from(["0", "-1", "1e-3", "1e300", "0.5", "2000", "200", "201", "4096", "65536"]),
)
key_name = st.one_of(st.sampled_from(KEYS), st.from_regex(r"[a-z_]{1,10}(\.[a-z_]{1,10}){0,2}", fullmatch=True))


@st.composite
def mutated(draw) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["delete", "insert", "replace", "value", "key", "section"]))
        lines = text.split("\n")
        if op in ("delete", "insert", "replace"):
            i = draw(st.integers(min_value=0, max_value=len(text)))
            j = min(len(text), i + draw(st.integers(min_value=0, max_value=8)))
            new = draw(toml_text) if op != "delete" else ""
            text = text[:i] + new + (text[i:] if op == "insert" else text[j:])
        elif op == "value":
            # Replace the value of one `key = value` line with a random TOML value.
            candidates = [n for n, line in enumerate(lines) if "=" in line and not line.startswith("[")]
            if candidates:
                n = draw(st.sampled_from(candidates))
                lines[n] = lines[n].split("=", 1)[0] + "= " + draw(toml_scalar)
                text = "\n".join(lines)
        elif op == "key":
            n = draw(st.integers(min_value=0, max_value=len(lines)))
            lines.insert(n, f"{draw(key_name)} = {draw(toml_scalar)}")
            text = "\n".join(lines)
        else:
            n = draw(st.integers(min_value=0, max_value=len(lines)))
            lines.insert(n, f"[{draw(key_name)}]")
            text = "\n".join(lines)
    return text


def check_outcome(make) -> None:
    try:
        cfg = make()
    except UserError as exc:  # ConfigError is a UserError
        message = str(exc)
        assert message.strip(), "an error with no message"
        # A raw validator code ("...: string_type") means a case the explanations do not cover yet.
        assert not RAW_KIND.search(message), message
        return
    assert isinstance(cfg, LabConfig)
    text = dumps_config(cfg)
    assert loads_config(text) == cfg
    assert dumps_config(loads_config(text)) == text


@FUZZ
@given(mutated())
def test_any_mutation_of_a_valid_file_is_valid_or_a_config_error(text):
    try:
        loads_config(text, SOURCE)
    except UserError as exc:
        # Every problem line names the file, so the user knows where to look.
        assert all(line.startswith(f"{SOURCE}: ") for line in str(exc).splitlines()), str(exc)
    check_outcome(lambda: loads_config(text, SOURCE))


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.builds(lambda k, v: f"{k}={v}", key_name, toml_scalar),
            st.builds(lambda k, v: f"{k}={v}", key_name, st.text(max_size=10)),
            st.text(max_size=20),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_any_override_is_valid_or_a_user_error(items):
    check_outcome(lambda: with_overrides(LabConfig(), items))


@FUZZ
@given(st.text(), st.text())
def test_any_title_and_lesson_round_trip(title, lesson):
    cfg = LabConfig().model_copy(update={"title": title, "lesson": lesson})
    again = loads_config(dumps_config(cfg))
    assert (again.title, again.lesson) == (title, lesson)
