"""`tellonce department add | list | show | disable`, run as an operator would, against a real
database: JSON out when it works, one plain line and a non-zero exit when it does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from joserfc.jwk import ECKey
from sqlalchemy.engine import Engine

from connectors import departments
from web.cli import main


@pytest.fixture
def env(engine: Engine, key_file: Path, tmp_path: Path) -> dict[str, str]:
    """Settings pointing the command line at this test's migrated database and key file."""
    return {
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "TELLONCE_KEY_FILE": str(key_file),
        "TELLONCE_INSTANCE": str(tmp_path / "instance"),
        "TELLONCE_MAIL_DIR": str(tmp_path / "mail"),
        "TELLONCE_SQLITE_SYNCHRONOUS": "OFF",
        "TELLONCE_LEDGER_ORIGIN": "test.tellonce/ledger",
    }


def run(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env=env)
    # Anything but a clean exit means an exception escaped: the user would see a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def plain_error(result: Result) -> str:
    """The single line a failed command printed (without click's 'Error: ')."""
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0].removeprefix("Error: ")


def registration(**changes: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "client_name": "Anytown Council housing",
        "redirect_uris": ["https://housing.anytown.example/callback"],
        "jwks": {"keys": [{**ECKey.generate_key("P-256").as_dict(private=False), "kid": "k1"}]},
        "tellonce": {
            "purposes": [
                {
                    "code": "emergency_housing",
                    "description": "To find you somewhere safe to stay tonight.",
                    "data_points": ["contact.address"],
                    "story_topics": ["housing"],
                }
            ],
            "accountable_officer": {
                "name": "Priya Shah",
                "role": "Head of Housing Options",
                "email": "priya.shah@anytown.example",
            },
        },
    }
    metadata.update(changes)
    return metadata


def secret_registration() -> dict[str, Any]:
    metadata = registration(token_endpoint_auth_method="client_secret_basic")
    del metadata["jwks"]
    return metadata


@pytest.fixture
def write(tmp_path: Path) -> Any:
    """Write a registration file and return its path."""

    def write_file(content: Any, name: str = "department.json") -> str:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    return write_file


def stored(db: Any) -> tuple[int, int]:
    """(departments stored, ledger leaves written)."""
    return db.scalar("SELECT COUNT(*) FROM department"), db.scalar(
        "SELECT COUNT(*) FROM ledger_entry"
    )


def test_add_prints_only_the_client_id_for_private_key_jwt(env: Any, write: Any, db: Any) -> None:
    result = run(env, "department", "add", write(registration()))
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert list(answer) == ["client_id"]
    assert answer["client_id"].startswith("dept_")
    assert result.stderr == ""
    assert stored(db) == (1, 1)


def test_add_shows_a_client_secret_once_and_it_checks(env: Any, write: Any, db: Any) -> None:
    result = run(env, "department", "add", write(secret_registration()), "--client-id", "benefits")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["client_id"] == "benefits"
    assert "shown only this once" in result.stderr
    with db.tx() as session:
        department = departments.get_department(session, "benefits")
        assert departments.check_client_secret(department, answer["client_secret"])
    shown = run(env, "department", "show", "benefits")
    assert answer["client_secret"] not in shown.output
    assert department.secret_hash not in shown.output


def test_add_with_a_fixed_client_id(env: Any, write: Any) -> None:
    result = run(env, "department", "add", write(registration()), "--client-id", "anytown-housing")
    assert json.loads(result.stdout) == {"client_id": "anytown-housing"}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"client_name": "x",', "is not valid JSON: Expecting property name enclosed in double"),
        ("", "is not valid JSON: Expecting value at line 1, column 1."),
        ("[1, 2]", "The registration file must hold a JSON object."),
    ],
    ids=["cut short", "empty", "a list"],
)
def test_add_refuses_a_file_that_is_not_a_json_object(
    env: Any, write: Any, db: Any, content: str, expected: str
) -> None:
    assert expected in plain_error(run(env, "department", "add", write(content)))
    assert stored(db) == (0, 0)


def test_add_refuses_a_file_that_is_not_text(env: Any, tmp_path: Path, db: Any) -> None:
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00")
    message = plain_error(run(env, "department", "add", str(path)))
    assert message == f"The file {path} could not be read as UTF-8 text."


def test_add_refuses_a_missing_file(env: Any, tmp_path: Path, db: Any) -> None:
    path = tmp_path / "nowhere.json"
    assert plain_error(run(env, "department", "add", str(path))) == f"There is no file at {path}."


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"redirect_uris": ["https://housing.anytown.example/cb#x"]},
            "redirect_uris[0]: must be an https URL with no fragment",
        ),
        ({"token_endpoint_auth_method": "none"}, "token_endpoint_auth_method: must be"),
        ({"software_id": "abc"}, "software_id: is not a field we know"),
    ],
    ids=["fragment", "auth none", "unknown field"],
)
def test_add_refuses_a_bad_field_naming_it_and_stores_nothing(
    env: Any, write: Any, db: Any, changes: dict[str, Any], expected: str
) -> None:
    message = plain_error(run(env, "department", "add", write(registration(**changes))))
    assert message.startswith(expected)
    assert stored(db) == (0, 0)


def test_add_refuses_a_taken_client_id(env: Any, write: Any, db: Any) -> None:
    path = write(registration())
    run(env, "department", "add", path, "--client-id", "housing")
    message = plain_error(run(env, "department", "add", path, "--client-id", "housing"))
    assert message == "The client id 'housing' is already taken by a department."
    assert stored(db) == (1, 1)


def test_list_when_empty(env: Any) -> None:
    result = run(env, "department", "list")
    assert result.exit_code == 0
    assert result.output == "No departments are registered yet.\n"


def test_list_shows_each_department_and_its_status(env: Any, write: Any) -> None:
    run(env, "department", "add", write(registration()), "--client-id", "housing")
    run(env, "department", "add", write(secret_registration()), "--client-id", "benefits")
    run(env, "department", "disable", "housing")
    table = run(env, "department", "list").output.splitlines()
    assert table[0].split() == ["CLIENT", "ID", "NAME", "SIGNS", "IN", "WITH", "STATUS"]
    rows = sorted(line.split("  ") for line in table[1:])
    assert [[cell.strip() for cell in row if cell.strip()] for row in rows] == [
        ["benefits", "Anytown Council housing", "client_secret_basic", "active"],
        ["housing", "Anytown Council housing", "private_key_jwt", "disabled"],
    ]
    lines = run(env, "department", "list", "--json").output.splitlines()
    assert sorted((json.loads(line) for line in lines), key=lambda r: r["client_id"]) == [
        {
            "client_id": "benefits",
            "name": "Anytown Council housing",
            "auth_method": "client_secret_basic",
            "status": "active",
        },
        {
            "client_id": "housing",
            "name": "Anytown Council housing",
            "auth_method": "private_key_jwt",
            "status": "disabled",
        },
    ]


def test_show_prints_what_was_registered(env: Any, write: Any) -> None:
    metadata = registration()
    run(env, "department", "add", write(metadata), "--client-id", "housing")
    shown = json.loads(run(env, "department", "show", "housing").output)
    assert shown["client_id"] == "housing"
    assert shown["status"] == "active"
    assert shown["disabled_at"] is None
    assert shown["redirect_uris"] == metadata["redirect_uris"]
    assert shown["jwks"] == metadata["jwks"]
    assert shown["token_endpoint_auth_method"] == "private_key_jwt"
    assert shown["tellonce"]["purposes"] == metadata["tellonce"]["purposes"]
    assert shown["tellonce"]["accountable_officer"]["name"] == "Priya Shah"


def test_show_an_unknown_department(env: Any) -> None:
    message = plain_error(run(env, "department", "show", "nobody"))
    assert message == "There is no department with the client id 'nobody'."


def test_disable_confirms_and_refuses_a_second_time(env: Any, write: Any, db: Any) -> None:
    run(env, "department", "add", write(registration()), "--client-id", "housing")
    result = run(env, "department", "disable", "housing")
    assert result.exit_code == 0
    assert result.output == (
        "Disabled housing (Anytown Council housing): it can no longer ask for or fetch "
        "anyone's information.\n"
    )
    with db.tx() as session:
        assert departments.active_department(session, "housing") is None
    again = plain_error(run(env, "department", "disable", "housing"))
    assert again == "The department 'housing' is already disabled."
    assert stored(db) == (1, 2)


def test_disable_an_unknown_department(env: Any) -> None:
    message = plain_error(run(env, "department", "disable", "nobody"))
    assert message == "There is no department with the client id 'nobody'."


def test_the_ledger_verifies_after_adding_and_disabling(env: Any, write: Any) -> None:
    run(env, "department", "add", write(registration()), "--client-id", "housing")
    run(env, "department", "add", write(secret_registration()))
    run(env, "department", "disable", "housing")
    result = run(env, "ledger", "verify")
    assert result.exit_code == 0, result.output
    assert "The ledger verifies: 3 entries" in result.stdout
