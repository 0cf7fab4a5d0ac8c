"""A release pin's champion as `promote` writes it, for the tests: each varies the fields it is about."""

from {{ cookiecutter.package_name }}.core.contract import ReleasePin


def champion(**changes) -> dict:
    """A well-formed champion with no build recorded yet; `changes` replace fields."""
    pinned = {
        "model_name": "credit-risk",
        "version": "3",
        "run_id": "r" * 32,
        "model_sha256": "s" * 64,
        "data_md5": "d" * 32,
        "git_commit": "c0ffee",
        "bento_tag": None,
        "image_digest": None,
        "policy_hash": "b" * 40,
        "decision_hash": "a" * 64,
        "promoted_at": "2026-01-01T00:00:00Z",
        "metrics": {"roc_auc": 0.8125},
    }
    return {**pinned, **changes}


def release_pin(**changes) -> ReleasePin:
    """The same champion, typed as load_pin returns it and promote writes it."""
    return ReleasePin.from_mapping(champion(**changes))
