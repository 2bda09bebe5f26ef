"""The pure generators of the data tier: names, SQL, ACL rules and configuration files.

What they produce is run against real servers in tests/test_data_servers.py; here are the rules
that hold for any input.
"""

from __future__ import annotations

import re

import pytest

from components.data import acl, config_files, sql
from settings.quantities import Memory


def test_service_names_become_identifiers_that_need_no_quoting():
    assert sql.identifier("codai") == "codai"
    assert sql.identifier("market-ai") == "market_ai"
    for reserved in ("public", "postgres", "pg-cron", "codai-monitor"):
        with pytest.raises(ValueError, match="reserved role name"):
            sql.identifier(reserved)
    with pytest.raises(ValueError, match="does not make a PostgreSQL identifier"):
        sql.identifier("9lives")


def test_the_bootstrap_plan_refuses_what_would_break_the_script():
    with pytest.raises(ValueError, match="map to the same role twice"):
        sql.BootstrapPlan(["a-b", "a_b"], "/run/pw", 10)
    with pytest.raises(ValueError, match="absolute path of safe characters"):
        sql.BootstrapPlan(["codai"], "/run/pw'; rm -rf /", 10)


def test_the_bootstrap_is_the_same_text_for_the_same_services_in_any_order():
    first = sql.bootstrap_sql(sql.BootstrapPlan(["wallet", "codai"], "/run/pw", 10))
    assert first == sql.bootstrap_sql(sql.BootstrapPlan(["codai", "wallet"], "/run/pw", 10))
    assert first.index('CREATE ROLE "codai"') < first.index('CREATE ROLE "wallet"')
    assert "monitor" not in first and "template1" not in first  # an external server: nothing but the services


def test_each_role_reads_its_own_password_file_and_stops_on_a_missing_one():
    text = sql.bootstrap_sql(sql.BootstrapPlan(["codai"], "/run/pw", 10, sql.MONITOR_ROLE, True))
    assert re.findall(r"`cat '(.*?)'`", text) == ["/run/pw/codai_monitor", "/run/pw/codai"]
    assert text.count("RAISE EXCEPTION") == 2 and text.count("\\unset password") == 2


def test_acl_rules_reset_the_user_and_carry_only_password_digests():
    users = [acl.service_user("codai"), acl.default_user()]
    text = acl.acl_file(users, {"codai": "s3cret-password"})
    digest = acl.password_digest("s3cret-password")
    assert text == (f"user codai reset on #{digest} ~codai:* &codai:* +@all {' '.join(acl.SERVICE_DENIED)}\n"
                    "user default reset -@all\n")
    assert acl.setuser_commands(users, {"codai": "s3cret-password"}).splitlines() == [
        f"ACL SETUSER {line.removeprefix('user ')}" for line in text.splitlines()]


def test_acl_generation_refuses_missing_passwords_and_twin_users():
    with pytest.raises(ValueError, match="no password for Redis user 'codai'"):
        acl.acl_file([acl.service_user("codai")], {})
    with pytest.raises(ValueError, match="listed twice"):
        acl.acl_file([acl.service_user("codai"), acl.service_user("codai")], {"codai": "x"})


@pytest.mark.parametrize(("limit", "shared_buffers", "cache", "work_mem"), [
    ("1Gi", "256MB", "768MB", "4MB"),
    ("4Gi", "1024MB", "3072MB", "7MB"),
    ("16Gi", "4096MB", "12288MB", "30MB"),
])
def test_memory_parameters_follow_the_memory_limit(limit, shared_buffers, cache, work_mem):
    tuned = config_files.tuned_parameters(Memory.parse(limit), max_connections=200)
    assert (tuned["shared_buffers"], tuned["effective_cache_size"], tuned["work_mem"]) == (
        shared_buffers, cache, work_mem)


def test_stack_parameters_win_and_values_are_quoted():
    conf = config_files.postgresql_conf(config_files.PostgresPaths("/etc/pg/hba", "/run/pg"),
                                        memory_limit=Memory.parse("1Gi"), max_connections=100,
                                        parameters={"work_mem": "64MB", "application_name": "it's"})
    assert "work_mem = '64MB'\n" in conf and "work_mem = '4MB'" not in conf
    assert "application_name = 'it''s'\n" in conf


def test_network_connections_always_authenticate():
    hba = [line.split() for line in config_files.pg_hba_conf("postgres").splitlines()
           if line and not line.startswith("#")]
    assert [rule for rule in hba if rule[0] == "host"] == [
        ["host", "all", "all", "0.0.0.0/0", "scram-sha-256"], ["host", "all", "all", "::/0", "scram-sha-256"]]
    assert [rule for rule in hba if rule[-1] == "trust"] == [["local", "all", "postgres", "trust"]]
