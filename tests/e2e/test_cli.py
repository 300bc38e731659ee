"""The `deplatform` command through its installed entry point, as users' scripts drive it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import DEPLATFORM, EXAMPLE, WORKED_EXAMPLE

CONTRACTS = Path(__file__).resolve().parents[3] / "shared" / "contract"
CONTRACT = CONTRACTS / "check_cli.py"


def run(
    database_url: str, *args: str, stdin: str | None = None, env_columns: str | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEPLATFORM_DATABASE_URL=database_url)
    if env_columns:
        env["COLUMNS"] = env_columns
    return subprocess.run(
        [DEPLATFORM, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_import_status_history_and_export(database_url, tmp_path):
    imported = run(database_url, "import", str(EXAMPLE), "--json")
    assert imported.returncode == 0, imported.stderr
    summary = json.loads(imported.stdout)
    assert summary == {"recorded": 12, "duplicates": 0, "rejected": [], "position": 16}

    as_of, overall, channels, twitter, _ = WORKED_EXAMPLE[4]
    parler = json.loads(run(database_url, "status", "parler", "--as-of", as_of, "--json").stdout)
    assert (parler["status"], tuple(parler["channels"].values())) == (overall, channels)
    assert parler["hosting"][0]["provider"] == "Amazon Web Services"
    account = run(database_url, "status", "twitter:REALDONALDTRUMP", "--as-of", as_of, "--json")
    assert json.loads(account.stdout)["status"] == twitter

    history = json.loads(run(database_url, "history", "parler", "--json").stdout)
    assert [h["type"] for h in history][:2] == ["PlatformRegistered", "AppStoreRemoved"]
    assert all(h["retracted"] is False for h in history)

    dump = tmp_path / "export.jsonl"
    assert run(database_url, "export", str(dump)).returncode == 0
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert len(lines) == 12 and [x["position"] for x in lines] == sorted(
        x["position"] for x in lines
    )
    again = run(database_url, "import", "-", "--json", stdin=dump.read_text())
    assert json.loads(again.stdout) == {
        "recorded": 0,
        "duplicates": 12,
        "rejected": [],
        "position": None,
    }


def test_record_and_retract_one_event(database_url):
    run(database_url, "import", str(EXAMPLE))
    event = {
        "type": "DomainSuspended",
        "platform": "parler",
        "occurred_at": "2021-02-01T00:00:00Z",
        "provider": "Epik",
        "event_id": "dom-1",
    }
    recorded = run(database_url, "record", "--json-event", json.dumps(event), "--json")
    assert json.loads(recorded.stdout)["recorded"] == 1
    offline = run(database_url, "status", "parler", "--as-of", "2021-02-02", "--json")
    assert json.loads(offline.stdout)["domain"] == "suspended"
    retracted = run(database_url, "retract", "dom-1", "--reason", "wrong platform")
    assert retracted.returncode == 0, retracted.stderr
    history = json.loads(run(database_url, "history", "parler", "--json").stdout)
    marked = next(h for h in history if h["event_id"] == "dom-1")
    assert marked["retracted"] is True and marked["retraction"]["reason"] == "wrong platform"
    again = run(database_url, "retract", "dom-1", "--reason", "twice")
    assert again.returncode == 1 and "already retracted" in again.stderr


def test_exit_codes(database_url, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "Nope"}\n')
    assert run(database_url, "import", str(bad)).returncode == 1
    assert run(database_url, "import", str(tmp_path / "missing.jsonl")).returncode == 2
    assert run(database_url, "status").returncode == 2
    assert run(database_url, "status", "parler", "--as-of", "2021-01-01T00:00:00").returncode == 2
    unknown = run(database_url, "status", "parler")
    assert unknown.returncode == 1 and "no record of platform 'parler'" in unknown.stderr
    assert run("mysql://nope", "status", "parler").returncode == 2
    no_database = run("postgresql://postgres@127.0.0.1:5432/no_such_db_x", "status", "parler")
    assert no_database.returncode == 1 and "cannot connect" in no_database.stderr


def test_skip_invalid_reports_the_rejected_lines_and_records_the_rest(database_url, tmp_path):
    banned_again = {
        "type": "AccountBanned",
        "account": "twitter:realDonaldTrump",
        "occurred_at": "2021-01-09",
        "provider": "Twitter",
    }
    lines = [*EXAMPLE.read_text().splitlines(), json.dumps(banned_again)]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("\n".join(lines) + "\n")
    result = run(database_url, "import", str(mixed), "--skip-invalid", "--json")
    summary = json.loads(result.stdout)
    assert result.returncode == 1
    assert summary["recorded"] == 12 and [r["line"] for r in summary["rejected"]] == [len(lines)]
    assert "is banned" in summary["rejected"][0]["error"]


def test_demo_replays_the_example(tmp_path):
    demo = subprocess.run(
        [DEPLATFORM, "demo", "--no-serve"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=dict(os.environ, COLUMNS="200"),
    )
    assert demo.returncode == 0, demo.stderr
    assert "hosting terminated" in demo.stdout and "web=offline" in demo.stdout
    assert "…" not in demo.stdout  # nothing cut short


@pytest.mark.skipif(
    not CONTRACT.exists(), reason="the shared contract checker is not beside the repo"
)
@pytest.mark.parametrize("checker", ["check_cli.py", "check_regions_cli.py"])
def test_the_shared_cli_contract(database_url, checker):
    args = [] if database_url.startswith("sqlite") else ["--database-url", database_url]
    env = dict(os.environ, PATH=f"{Path(DEPLATFORM).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        [sys.executable, str(CONTRACTS / checker), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_projections_follow_report_and_rebuild(database_url):
    env = dict(os.environ, DEPLATFORM_DATABASE_URL=database_url)
    assert run(database_url, "import", str(EXAMPLE), "--no-projections").returncode == 0
    lagging = json.loads(run(database_url, "projections", "status", "--json").stdout)
    assert lagging["position"] == 0 and lagging["lag"] == lagging["head"] > 0

    follower = subprocess.Popen(
        [DEPLATFORM, "projections", "run", "--poll", "0.1"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert follower.poll() is None, follower.stderr.read()
            asked = run(database_url, "projections", "status", "--json")
            assert asked.returncode == 0, asked.stderr
            report = json.loads(asked.stdout)
            if report["lag"] == 0:
                break
            time.sleep(0.2)
        assert report["lag"] == 0 and report["last_error"] is None
    finally:
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=30) == 0, follower.stderr.read()

    rebuilt = run(database_url, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "rebuilt generation 2" in rebuilt.stdout and "events/s" in rebuilt.stdout
    offline = run(
        database_url, "status", "--all", "--status", "offline", "--as-of", "2021-01-12", "--json"
    )
    assert [s["subject"] for s in json.loads(offline.stdout)] == ["parler"]


def test_report_changes_and_export_after_a_position(database_url, tmp_path):
    assert run(database_url, "import", str(EXAMPLE)).returncode == 0
    period = ["--from", "2021-01-01", "--to", "2021-02-01"]
    made = run(database_url, "report", *period, "--format", "json", "--subject", "parler")
    assert made.returncode == 0, made.stderr
    document = json.loads(made.stdout)
    web = [
        o
        for o in document["tables"]["outages"]
        if o["channel"] == "web" and o["start"] == "2021-01-11T07:59:00Z"
    ]
    assert [o["time_in_period_seconds"] for o in web] == [489_660]
    target = tmp_path / "outages.parquet"
    written = run(
        database_url,
        "report",
        *period,
        "--format",
        "parquet",
        "--table",
        "outages",
        "-o",
        str(target),
    )
    assert written.returncode == 0 and target.read_bytes()[:4] == b"PAR1"
    assert run(database_url, "report", *period, "--format", "xls").returncode == 2
    assert run(database_url, "report", "--from", "2021-02-01", "--to", "2021-01-01").returncode == 2

    changed = json.loads(
        run(
            database_url,
            "changes",
            "--from",
            "2021-01-09T12:00:00Z",
            "--to",
            "2021-01-20",
            "--json",
        ).stdout
    )
    assert [s["subject"] for s in changed["subjects"]] == ["parler"]

    everything = [json.loads(line) for line in run(database_url, "export").stdout.splitlines()]
    middle = everything[5]["position"]
    rest = [
        json.loads(line)
        for line in run(database_url, "export", "--after", str(middle)).stdout.splitlines()
    ]
    assert rest == everything[6:]


def test_tables_keep_keys_and_times_whole_and_intervals_say_what_began_them(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    env = dict(os.environ, COLUMNS="80")
    subprocess.run([DEPLATFORM, "import", str(EXAMPLE), "--database-url", url], check=True, env=env)
    shown = subprocess.run(
        [DEPLATFORM, "status", "--all", "--as-of", "2021-01-12", "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    assert "twitter:realDonaldTrump" in shown and "2021-01-11T07:59:00Z" in shown
    assert "…" not in shown
    runs = subprocess.run(
        [DEPLATFORM, "intervals", "parler", "--database-url", url],
        capture_output=True,
        text=True,
        env=dict(env, COLUMNS="160"),
    ).stdout
    assert "hosting terminated" in runs and "Amazon Web Services" in runs
    assert "5 d 16 h 1 min" in runs  # offline from AWS's cut to DDoS-Guard's return


def test_an_unknown_subject_gets_close_matches_and_the_store_named(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    subprocess.run([DEPLATFORM, "import", str(EXAMPLE), "--database-url", url], check=True)
    asked = subprocess.run(
        [DEPLATFORM, "status", "parlor", "--database-url", url], capture_output=True, text=True
    )
    assert asked.returncode == 1
    assert "did you mean 'parler'" in asked.stderr and str(tmp_path) in asked.stderr


def test_the_cli_loads_the_store_the_http_stack_and_the_domain_only_when_a_command_runs():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, adapters.cli; heavy = ('eventsourcing', 'psycopg', 'fastapi', "
            "'pydantic', 'pyarrow', 'structlog', 'uvicorn', 'domain', 'jinja2'); "
            "print(' '.join(m for m in heavy if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == ""  # `deplatform --help` stays fast for scripts


def test_the_option_choices_the_cli_lists_are_the_domains_and_the_reports():
    from adapters.cli.queries import STATUS_NAMES
    from adapters.cli.reports import FORMATS as LISTED
    from adapters.reporting import FORMATS
    from domain.values import STATUSES

    assert set(STATUS_NAMES) == {s.value for s in STATUSES} and LISTED == FORMATS
    refused = subprocess.run(
        [DEPLATFORM, "status", "--all", "--status", "sideways"], capture_output=True, text=True
    )
    assert refused.returncode == 2 and "sideways" in refused.stderr


def test_rebuild_and_token_add_print_json_when_asked(tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    subprocess.run([DEPLATFORM, "import", str(EXAMPLE), "--database-url", url], check=True)
    rebuilt = subprocess.run(
        [DEPLATFORM, "projections", "rebuild", "--json", "--database-url", url],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(rebuilt.stdout)
    assert summary["generation"] == 2 and summary["events"] == 16 and summary["replaced"] == 1
    added = subprocess.run(
        [DEPLATFORM, "token", "add", "alice", "--file", str(tmp_path / "tokens"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    token = json.loads(added.stdout)
    assert token["name"] == "alice" and token["token"] not in (tmp_path / "tokens").read_text()


def test_providers_ranks_them_by_the_subjects_their_measures_cut_off(database_url):
    assert run(database_url, "import", str(EXAMPLE)).returncode == 0
    answer = run(database_url, "providers", "--from", "2021-01-01", "--to", "2021-02-01", "--json")
    assert answer.returncode == 0, answer.stderr
    ranked = json.loads(answer.stdout)["providers"]
    names = [p["provider"] for p in ranked]
    assert "Amazon Web Services" in names and "DDoS-Guard" not in names
    aws = ranked[names.index("Amazon Web Services")]
    assert {row["subject"] for row in aws["bound"]} == {"parler"}
    assert all(row["ongoing"] for row in aws["bound"])
    table = run(database_url, "providers", "--from", "2021-01-01", "--to", "2021-02-01")
    assert "Amazon Web Services" in table.stdout


def test_every_read_takes_a_country(database_url):
    regional = EXAMPLE.parent / "regional-2024-2025.jsonl"
    assert run(database_url, "import", str(regional)).returncode == 0

    def answer(*args: str):
        found = run(database_url, *args, "--json")
        assert found.returncode == 0, found.stderr
        return json.loads(found.stdout)

    history = answer("history", "x", "--region", "br")
    assert [h["type"] for h in history] == ["PlatformRegistered", "AccessBlocked", "AccessRestored"]
    runs = answer("intervals", "x", "--region", "BR")
    assert [r["status"] for r in runs if r["channel"] == "web"] == ["online", "offline", "online"]
    assert [r["status"] for r in answer("intervals", "x") if r["channel"] == "web"] == ["online"]
    period = ("--from", "2024-08-01", "--to", "2024-11-01")
    [x] = answer("changes", *period)["subjects"]
    assert x["changes"] == {} and {t["region"] for t in x["transitions"]} == {"BR"}
    assert answer("changes", *period, "--region", "FR")["subjects"] == []
    report = run(database_url, "report", *period, "--region", "br", "--format", "json")
    assert json.loads(report.stdout)["header"]["region"] == "BR"
    ranked = run(database_url, "providers", "--from", "2024-01-01", "--to", "2025-01-01")
    assert "Anatel" in ranked.stdout and "BR" in ranked.stdout
    refused = run(database_url, "history", "x", "--region", "EU")
    assert refused.returncode == 2 and "EU" in refused.stderr


def test_stored_text_reaches_the_terminal_as_text(database_url):
    """Rich markup in a provider's name is printed as written, and control characters in
    stored text (refused at input, but a store may hold older ones) never reach it."""
    from rich.console import Console

    from adapters.cli.render import text

    provider = "[bold red]Evil[/] [link=https://x.example]here[/link]"
    registered = {"type": "PlatformRegistered", "platform": "p", "occurred_at": "2021-01-01"}
    cut = registered | {"type": "HostingTerminated", "provider": provider}
    lines = "\n".join(json.dumps(line) for line in (registered | {"name": "P"}, cut))
    assert run(database_url, "import", "-", stdin=lines).returncode == 0
    history = run(database_url, "history", "p", env_columns="250")
    assert provider in history.stdout
    refused = run(database_url, "record", "--json-event", json.dumps(cut | {"reason": "\x1b[2J"}))
    assert refused.returncode == 1 and "\x1b" not in refused.stdout + refused.stderr
    console = Console(force_terminal=True, color_system="truecolor", width=80)
    with console.capture() as captured:
        console.print(text("a\x1b[2J\x1b]8;;https://x.example\x1b\\b\x9b31mc"))
    shown = captured.get()
    assert "\x1b" not in shown and "\x9b" not in shown and shown.startswith("a[2J]8;;")


def test_an_import_of_duplicates_alone_still_brings_lagging_read_models_up_to_date(database_url):
    assert run(database_url, "import", str(EXAMPLE), "--no-projections").returncode == 0
    lagging = json.loads(run(database_url, "projections", "status", "--json").stdout)
    assert lagging["lag"] > 0
    again = run(database_url, "import", str(EXAMPLE), "--json")
    assert json.loads(again.stdout)["recorded"] == 0
    assert json.loads(run(database_url, "projections", "status", "--json").stdout)["lag"] == 0


def test_a_long_import_lists_the_first_refusals_and_counts_the_others(database_url, tmp_path):
    from service.recording import LISTED

    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n" * (LISTED + 500) + (EXAMPLE.read_text()))
    found = run(database_url, "import", str(bad), "--skip-invalid", "--json")
    summary = json.loads(found.stdout)
    assert found.returncode == 1 and summary["recorded"] == 12
    assert len(summary["rejected"]) == LISTED and summary["rejected_unlisted"] == 500


def test_a_read_of_a_store_that_does_not_exist_says_so_and_creates_nothing(tmp_path):
    missing = tmp_path / "no" / "such" / "store.db"
    for read in (
        ["status", "parler"],
        ["history", "parler"],
        ["changes", "--from", "2021-01-01", "--to", "2021-02-01"],
        ["export"],
    ):
        found = run(f"sqlite:///{missing}", *read)
        assert found.returncode == 1 and "no store at" in found.stderr, (read, found.stderr)
    assert not (tmp_path / "no").exists()
    assert run(f"sqlite:///{missing}", "import", str(EXAMPLE)).returncode == 0  # a write makes it
    assert run(f"sqlite:///{missing}", "status", "parler").returncode == 0


def test_the_demo_opens_at_the_storys_moment_and_removes_its_store_when_stopped(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = subprocess.Popen(
        [DEPLATFORM, "demo", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, COLUMNS="300", TMPDIR=str(tmp_path)),
    )
    try:
        line = ""
        while "Serving" not in line:
            line = demo.stdout.readline()
            assert line or demo.poll() is None, "the demo ended before serving"
        assert f"http://127.0.0.1:{port}/?as_of=2021-01-12" in line
        assert list(tmp_path.glob("deplatform-demo-*"))  # its store, while it serves
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
    assert not list(tmp_path.glob("deplatform-demo-*"))


def test_report_files_are_what_their_names_say_and_analysts_tools_read_them(tmp_path):
    import duckdb

    url = f"sqlite:///{tmp_path}/store.db"
    assert run(url, "import", str(EXAMPLE)).returncode == 0
    period = ("--from", "2021-01-01", "--to", "2021-02-01")
    refused = run(url, "report", *period, "--format", "parquet", "-o", str(tmp_path / "r.parquet"))
    assert refused.returncode == 2 and "--table" in refused.stderr and "outages" in refused.stderr
    target = tmp_path / "outages.parquet"
    made = run(
        url, "report", *period, "--format", "parquet", "--table", "outages", "-o", str(target)
    )
    assert made.returncode == 0, made.stderr
    types = dict(row[:2] for row in duckdb.sql(f"DESCRIBE SELECT * FROM '{target}'").fetchall())
    assert types["time_in_period_seconds"] == "DOUBLE" and types["opened_by_sources"] == "VARCHAR[]"
    assert types["start"] == "TIMESTAMP WITH TIME ZONE"


@pytest.mark.parametrize("columns", ["80", "200"])
def test_tables_fit_the_terminal_and_keep_words_whole(tmp_path, columns):
    url = f"sqlite:///{tmp_path}/store.db"
    assert run(url, "import", str(EXAMPLE)).returncode == 0
    every = run(url, "status", "--all", "--as-of", "2021-01-12", env_columns=columns).stdout
    lines = every.splitlines()
    assert all(len(line) <= int(columns) for line in lines)
    for key in ("parler", "twitter:realDonaldTrump", "2021-01-11T07:59:00Z", "subject", "status"):
        assert key in every  # whole, never folded into pieces
    assert ("hosting / detail" in every) == (columns == "200")  # left out when narrow
    history = run(url, "history", "parler", env_columns=columns).stdout
    assert all(len(line) <= int(columns) for line in history.splitlines())
    events = [e["event_id"] for e in json.loads(run(url, "history", "parler", "--json").stdout)]
    assert all(event_id in history for event_id in events)  # to retract one, no --json needed
    assert "regi" not in history.replace("registered", "")  # no word cut into pieces


def test_the_version_and_the_help_in_groups_with_examples():
    version = subprocess.run([DEPLATFORM, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("deplatform ")
    env = dict(os.environ, COLUMNS="100")
    top = subprocess.run([DEPLATFORM, "--help"], capture_output=True, text=True, env=env).stdout
    for group in ("Queries", "Writes", "Reports", "Operations"):
        assert group in top
    status = subprocess.run(
        [DEPLATFORM, "status", "--help"], capture_output=True, text=True, env=env
    ).stdout
    assert "Example: deplatform status parler" in status
    flags = [line for line in status.splitlines() if "--json" in line or "--all" in line]
    assert flags and not any("<bool>" in line for line in flags)  # a flag reads --json


def test_publish_writes_a_data_package_that_validates_and_tools_open(tmp_path):
    import duckdb
    import frictionless

    url = f"sqlite:///{tmp_path}/store.db"
    assert run(url, "import", str(EXAMPLE)).returncode == 0
    target = tmp_path / "dataset"
    made = run(url, "publish", str(target), "--known-at", "2030-01-01")
    assert made.returncode == 0, made.stderr
    report = frictionless.validate(str(target / "datapackage.json"))
    assert report.valid, report.flatten(["type", "note"])[:5]
    package = json.loads((target / "datapackage.json").read_text())
    assert package["known_at"] == "2030-01-01T00:00:00Z"
    names = [r["name"] for r in package["resources"]]
    assert names == ["events", "availability", "time_in_status", "outages", "accountability"]
    outages = next(r for r in package["resources"] if r["name"] == "outages")
    assert outages["schema"]["foreignKeys"][0]["reference"]["resource"] == "events"
    events = duckdb.sql(f"SELECT count(*) FROM '{target / 'data' / 'events.parquet'}'")
    assert events.fetchall()[0][0] == 12
    assert "date-released: 2030-01-01" in (target / "CITATION.cff").read_text()
    assert "## Rules" in (target / "README.md").read_text()
    datasette = json.loads((target / "datasette.json").read_text())
    assert "rm1_periods" in str(datasette["databases"]["store"]["tables"])  # the store's tables
