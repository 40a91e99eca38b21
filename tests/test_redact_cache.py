"""`mask` remembers the texts it found nothing in: the same answers as the pattern alone, and never a secret kept.

(Masking does not depend on the policy, so there is nothing for a policy reload to invalidate.)
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from shell_lines import SEED, attack_lines, corpus_lines
from test_secrets import SECRETS

from keycardd import redact

SECRET_TEXTS = [
    *SECRETS,
    *(f"curl -H 'Authorization: Bearer {secret}' https://api.example" for secret in SECRETS),
    *(f"/home/dev/.cache/tokens/{secret}" for secret in SECRETS),
    "https://user:hunter2@example.com/x",
    "mysql -uroot -phunter2 db",
    "https://bucket.s3.amazonaws.com/f?X-Amz-Signature=abcdef0123",
]


def _unremembered(text: str) -> str:
    return redact._PATTERNS.sub(redact._replace, text)


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    redact._clean.clear()
    yield
    redact._clean.clear()


def test_remembered_answers_equal_the_patterns_answers() -> None:
    texts = [line for _, line in attack_lines(random.Random(SEED), per_template=2)]
    texts += [line for _, line in corpus_lines()] + SECRET_TEXTS
    texts += ["/w", "/home/dev/app", "keycardd policy 'base': permitted", "/home/dev/app/src/main.py"]
    assert len(texts) > 1000
    for _ in range(2):  # the first pass fills the cache, the second answers from it
        assert [redact.mask(text) for text in texts] == [_unremembered(text) for text in texts]
    assert "/home/dev/app" in redact._clean


def test_a_text_with_a_secret_is_never_remembered() -> None:
    for text in SECRET_TEXTS:
        assert redact.mask(text) != text
        assert redact.mask(text) == _unremembered(text)
    secrets = [*SECRETS, "hunter2", "abcdef0123"]
    assert not [text for text in redact._clean if any(secret in text for secret in secrets)]


def test_the_cache_is_bounded() -> None:
    for index in range(redact.CLEAN_CACHE_SIZE + 10):
        redact.mask(f"/w/file{index}")
    assert 0 < len(redact._clean) <= redact.CLEAN_CACHE_SIZE
    long_text = "/w/" + "a/" * redact.CLEAN_CACHE_MAX_LENGTH
    assert redact.mask(long_text) == long_text
    assert long_text not in redact._clean
