"""Translations (README: Languages): every word on screen, in the findings, the headless lines and the CLI
goes through gettext; `--lang pt` (or a pt_BR locale) shows Brazilian Portuguese.

The catalogue is checked against the code and against itself: the template (.pot) holds every string the code
marks, the Portuguese .po translates every one of them with the same placeholders, and the committed .mo is
the .po compiled. Then the app, the headless run and the CLI are read in Portuguese for English words left
behind.
"""

from __future__ import annotations

import gettext
import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tui_lab.cli import main
from tui_lab.core import i18n
from tui_lab.core.i18n import _, set_language

from pilot import aio, panel_ready, screen_lines, wait_for
from support import ROOT, small_config

LOCALE = ROOT / "tui_lab" / "locale"
POT = LOCALE / "tui_lab.pot"
PO = LOCALE / "pt" / "LC_MESSAGES" / "tui_lab.po"
MO = LOCALE / "pt" / "LC_MESSAGES" / "tui_lab.mo"
UPDATE = (
    "pybabel extract -c TRANSLATORS: --add-location=file --sort-output --project=tui-lab "
    "-o tui_lab/locale/tui_lab.pot tui_lab; pybabel update -i tui_lab/locale/tui_lab.pot -d tui_lab/locale "
    "-D tui_lab --no-fuzzy-matching; then translate and `pybabel compile -d tui_lab/locale -D tui_lab`"
)

# English words of the interface that must not be left on a Portuguese screen. Config keys and values, layer
# names, preset names and the run directory's path are technical tokens shown as they are (and taken out of
# the rows first); none of these words is one of them.
ENGLISH = (
    "Findings", "Gradient", "Gradients", "flow", "press", "run", "paused", "completed", "running", "vanishing",
    "exploding", "healthy", "snapshot", "snapshots", "view", "quit", "step", "loss", "accuracy", "Activations",
    "dead", "saturated", "waiting", "layer", "layers", "learned", "network", "histogram", "baseline", "pace",
    "edit", "leave", "lesson", "pause", "stop", "new", "pin", "gets", "try", "the", "and", "of", "to", "with",
    "per", "over", "time", "validation", "points", "regions", "guessing", "next", "choose", "axis", "from",
    "yet", "nothing", "after", "is", "on", "for", "by", "or", "at", "only",
)  # fmt: skip
ENGLISH_WORD = re.compile(r"\b(" + "|".join(ENGLISH) + r")\b")


def catalogue(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def messages(cat) -> dict:
    return {m.id: m for m in cat if m.id}


def english_left(rows: list[str]) -> list[tuple[str, str]]:
    """(word, row) for each English word on these rows; tokens with a path (/) or cut short (…) are left out."""
    found = []
    for row in rows:
        words = " ".join(w for w in row.split() if "/" not in w and "…" not in w)
        found += [(word, row.rstrip()) for word in ENGLISH_WORD.findall(words)]
    return found


@pytest.fixture
def portuguese():
    set_language("pt")
    yield
    set_language("en")


# ---------------------------------------------------------------------------------------------------------
# The catalogue.


def test_the_template_holds_every_string_the_code_marks():
    """A string wrapped in _() or N_() (or ngettext) but missing from the .pot would never be translated."""
    marked = {msgid for _file, _line, msgid, *_rest in extract_from_dir(str(ROOT / "tui_lab")) if msgid}
    template = set(messages(catalogue(POT)))
    assert marked - template == set(), f"new strings: update the catalogue ({UPDATE})"
    assert template - marked == set(), f"strings no longer in the code: update the catalogue ({UPDATE})"


def test_every_string_has_a_portuguese_translation():
    template, po = messages(catalogue(POT)), messages(catalogue(PO))
    assert set(template) == set(po), f"the .po is not up to date with the .pot ({UPDATE})"
    untranslated = [mid for mid, m in po.items() if not all(m.string if isinstance(m.string, tuple) else [m.string])]
    assert untranslated == []
    assert [mid for mid, m in po.items() if m.fuzzy] == [], "fuzzy entries are not compiled: review them"


def _fields(text: str) -> list[str]:
    """The placeholders a translation must keep: {name} fields, %(name)s / %s conversions."""
    try:
        braces = sorted(f"{{{name}}}" for _lit, name, _spec, _conv in string.Formatter().parse(text) if name)
    except ValueError:
        braces = []
    return braces + sorted(re.findall(r"%(?:\([a-z_]+\))?[sdr]", text))


def test_translations_keep_placeholders_spacing_and_the_leading_key():
    for mid, m in messages(catalogue(PO)).items():
        pairs = zip(mid, m.string) if isinstance(mid, tuple) else [(mid, m.string)]
        for source, target in pairs:
            assert _fields(source) == _fields(target), (source, target)
            # Pieces glued to other text keep their spaces and line ends.
            assert (source[:1] == " ") == (target[:1] == " "), (source, target)
            assert (source[-1:] == " ") == (target[-1:] == " "), (source, target)
            assert source.endswith("\n") == target.endswith("\n"), (source, target)
            # The config panel files a problem under its key by the key it starts with.
            if source.startswith(("{key} ", "{key}:")):
                assert target.startswith(source[:6]), (source, target)


def test_the_committed_mo_is_the_po_compiled():
    with MO.open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    po = messages(catalogue(PO))
    for mid, m in po.items():
        if isinstance(mid, tuple):
            assert compiled.ngettext(mid[0], mid[1], 1) == m.string[0]
            assert compiled.ngettext(mid[0], mid[1], 5) == m.string[1]
        else:
            assert compiled.gettext(mid) == m.string, f"{mid!r}: recompile the .mo ({UPDATE})"
    assert len(compiled._catalog) - 1 == sum(2 if isinstance(mid, tuple) else 1 for mid in po)  # less the header


# ---------------------------------------------------------------------------------------------------------
# Choosing the language.


def test_english_is_the_identity_and_portuguese_comes_from_the_catalogue():
    set_language("en")
    assert _("Findings") == "Findings" and _("") == ""
    try:
        set_language("pt")
        assert i18n.language() == "pt"
        assert _("Findings") == "Diagnóstico"
        assert _("a string the catalogue does not have") == "a string the catalogue does not have"
        assert i18n.ngettext("{jobs} job", "{jobs} jobs", 2) == "{jobs} processos"
    finally:
        set_language("en")
    assert _("Findings") == "Findings"


def test_findings_and_remedies_are_in_the_language_set(portuguese):
    from tui_lab.core.diagnosis import Breakdown, diagnose
    from tui_lab.core.run import Snapshot

    grads = {"L1": 1e-9, "L2": 1e-6, "L3": 1e-3, "out": 1e-1}
    layers = [
        {"name": name, "grad_norm": g, "weight_norm": 1.0, "update_ratio": 1e-3, "act_mean": 0.5, "act_std": 0.2}
        for name, g in grads.items()
    ]
    snap = Snapshot.from_dict({"step": 0, "loss": 1.1, "layers": layers}, total_steps=100)
    found = diagnose(snap, [], small_config(100), chance_loss=1.1, initial=snap)
    vanishing = next(f for f in found if f.kind == "vanishing")
    assert vanishing.message.startswith("desaparecimento do gradiente: L1 recebe 1e-8 do gradiente de out")
    assert vanishing.message.endswith("(sigmoid' <= 0.25 por camada)")
    assert (
        vanishing.remedy
        == "tente activation = relu, init = he_normal (relu-he), ou norm = batch_pre (batchnorm-rescue)"
    )
    assert (
        Breakdown("L3", "gradients", 16).text
        == "o gradiente estourou para Inf/NaN em L3 no caminho de volta (16 valores)"
    )


# ---------------------------------------------------------------------------------------------------------
# The app in Portuguese: views 1-5 after a short run, read as the terminal shows them.


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@aio
async def test_every_view_is_in_portuguese(size):
    from tui_lab.ui.app import LabApp

    app = LabApp(preset_name="sigmoide", cfg=small_config(60), lang="pt")
    try:
        async with app.run_test(size=size) as pilot:
            await panel_ready(pilot, app)
            before = screen_lines(app)
            await pilot.press("r")
            await wait_for(pilot, lambda: app.lab.state == "completed")
            seen = {"idle": before}
            for key in "12345":
                await pilot.press(key)
                await pilot.pause(0.6)
                seen[f"view {key}"] = screen_lines(app)
            await pilot.press("left", "left")
            await pilot.pause(0.5)
            seen["scrubbed"] = screen_lines(app)
            text = "\n".join(row for rows in seen.values() for row in rows)
            left = {where: english_left(rows) for where, rows in seen.items()}
            assert {where: found for where, found in left.items() if found} == {}
            for words in ("Diagnóstico", "Fluxo do gradiente", "concluído", "passo", "perda", "instantâneo"):
                assert words in text, words
            assert "r roda" in text and "q sai" in text  # the footer, whole at 80 columns
            # The findings came from the trainer thread, in the language set when the app was made.
            findings = app.lab.run.findings(app.lab.view())
            assert findings and all(not english_left([f.message, f.remedy]) for f in findings)
    finally:
        set_language("en")


@aio
async def test_english_stays_english():
    from tui_lab.ui.app import LabApp

    app = LabApp(preset_name="tiny", cfg=small_config(20))
    async with app.run_test(size=(100, 30)) as pilot:
        await panel_ready(pilot, app)
        await pilot.press("2")
        await pilot.pause(0.3)
        text = "\n".join(screen_lines(app))
        assert "Findings" in text and "Gradient flow" in text and "r run" in text


# ---------------------------------------------------------------------------------------------------------
# The command line in Portuguese.


def test_headless_run_prints_portuguese(tmp_path, capsys):
    code = main(["run", "deep-sigmoid", "--lang", "pt", "--set", "train.steps=20", "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert code == 0
    assert "passo 1/20" in out and "passo 20/20" in out and "perda" in out and "amostras/s" in out
    assert "concluído: 20 passos em" in out and "diretório da execução:" in out
    assert "desaparecimento do gradiente" in out and "tente " in out
    assert not english_left([line for line in out.splitlines() if not line.startswith("tui-lab run")])
    assert i18n.language() == "en"  # main() leaves the language as it found it


def test_help_is_in_portuguese(capsys):
    assert main(["--lang", "pt", "--help"]) == 0
    out = capsys.readouterr().out
    for words in ("uso: tui-lab", "opções", "mostrar esta ajuda e sair", "Códigos de saída", "abrir a TUI com este"):
        assert words in out, words
    assert main(["run", "--help", "--lang=pt"]) == 0
    out = capsys.readouterr().out
    assert "argumentos posicionais" in out and "escrever aqui o diretório da execução" in out
    assert main(["--help"]) == 0
    assert "usage: tui-lab" in capsys.readouterr().out  # and English again afterwards


def test_bad_values_are_explained_in_portuguese(capsys):
    assert main(["run", "deep-sigmoid", "--lang", "pt", "--set", "model.depth=-3"]) == 2
    err = capsys.readouterr().err
    assert "tui-lab: --set: model.depth = -3 está fora do intervalo; permitido: um inteiro >= 1 e <= 200" in err
    assert main(["run", "deep-sigmod", "--lang", "pt"]) == 2
    assert "nenhum preset chamado 'deep-sigmod' (quis dizer deep-sigmoid?)" in capsys.readouterr().err
    assert main(["--lang", "pt", "run"]) == 2  # argparse's own words too
    assert "erro: os seguintes argumentos são obrigatórios: NAME|PATH" in capsys.readouterr().err


def test_a_pt_br_locale_picks_portuguese(monkeypatch, capsys):
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", "pt_BR.UTF-8")
    assert main(["run", "deep-sigmoid", "--steps", "0"]) == 2
    assert "train.steps = 0 está fora do intervalo" in capsys.readouterr().err
    assert main(["run", "deep-sigmoid", "--steps", "0", "--lang", "en"]) == 2
    assert "train.steps = 0 is out of range" in capsys.readouterr().err


def test_catalogue_reads_back_with_the_standard_library():
    """What the app does at start-up: gettext finds the .mo by language, with no third-party package."""
    found = gettext.find(i18n.DOMAIN, str(i18n.LOCALE_DIR), languages=["pt"])
    assert found is not None and Path(found) == MO
    assert gettext.translation(i18n.DOMAIN, str(i18n.LOCALE_DIR), languages=["pt"]).gettext("step") == "passo"
