"""`lms-events analysts`: tested on the statements it issues (no ClickHouse server on these machines).

Each statement is parsed by ClickHouse's own parser (EXPLAIN AST through chDB, which has no users
to create); the set of statements is checked to grant SELECT on the analyst tables only, each
behind a row policy of the organization, with a readonly, CONST-limited profile.
"""

from __future__ import annotations

import re

import pytest

from analytics.analyst import server_users
from analytics.analyst.catalog import ANALYST_TABLES
from analytics.analyst.guard import Limits
from lms_events.clickhouse import ClickHouseStore
from lms_events.cli import main
from lms_events.errors import ConfigError

LIMITS = Limits(10.0, 1_000_000, 2**31)
ORG = "org_o'brien\\x"  # a quote and a backslash must stay inside their literal
USER = "lms_analyst_0123456789ab"


def statements() -> list[str]:
    return server_users.create_statements("lms_events", USER, "pa'ss", ORG, LIMITS, concurrency=2)


async def test_every_statement_parses(store: ClickHouseStore) -> None:
    for statement in [*statements(), *server_users.revoke_statements("lms_events", USER)]:
        rows = await store.query(f"EXPLAIN AST {statement}")
        assert rows, statement


def test_grants_are_select_on_analyst_tables_each_behind_the_organization() -> None:
    issued = statements()
    grants = [s for s in issued if s.startswith("GRANT")]
    assert grants == [f"GRANT SELECT ON `lms_events`.`{table}` TO `{USER}`" for table in ANALYST_TABLES]
    policies = [s for s in issued if s.startswith("CREATE ROW POLICY")]
    assert len(policies) == len(ANALYST_TABLES)
    for table, policy in zip(ANALYST_TABLES, policies, strict=True):
        assert f"ON `lms_events`.`{table}` FOR SELECT USING organization_id = 'org_o\\'brien\\\\x' TO `{USER}`" in policy
    assert not [s for s in issued if re.search(r"\bGRANT\b.*\b(ALL|INSERT|CREATE|ALTER|DROP|SYSTEM|dictGet|FILE|URL)\b", s)]


def test_the_profile_is_readonly_with_the_limits_fixed() -> None:
    profile = next(s for s in statements() if s.startswith("CREATE SETTINGS PROFILE"))
    for setting in (
        "readonly = 1 CONST",
        "max_execution_time = 10 CONST",
        "max_result_rows = 1000000 CONST",
        "result_overflow_mode = 'throw' CONST",
        f"max_memory_usage = {2**31} CONST",
        "max_concurrent_queries_for_user = 2 CONST",
    ):
        assert setting in profile
    user = next(s for s in statements() if s.startswith("CREATE USER"))
    assert "SETTINGS PROFILE 'lms_analyst_0123456789ab'" in user and "BY 'pa\\'ss'" in user


def test_revoke_drops_everything_create_made() -> None:
    dropped = server_users.revoke_statements("lms_events", USER)
    assert dropped[0] == f"DROP USER IF EXISTS `{USER}`"
    assert sum(s.startswith("DROP ROW POLICY") for s in dropped) == len(ANALYST_TABLES)
    assert {f"DROP QUOTA IF EXISTS `{USER}`", f"DROP SETTINGS PROFILE IF EXISTS `{USER}`"} <= set(dropped)


async def test_chdb_has_no_analyst_users(store: ClickHouseStore) -> None:
    with pytest.raises(ConfigError, match="CLICKHOUSE_URL"):
        await server_users.create(store, "org_a", "", LIMITS, 2)


def test_the_command_says_it_needs_a_server(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLICKHOUSE_URL", raising=False)
    assert main(["analysts", "list"]) == 2
    assert "CLICKHOUSE_URL" in capsys.readouterr().err
