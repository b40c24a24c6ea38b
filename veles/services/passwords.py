"""What a password must be: long enough, not too long, and not guessable.

One rule for every place a password is chosen (sign-up, invites, a changed or reset password,
the change forced at first sign-in), so none of them is the weak door. Guessability is zxcvbn's
estimate (the Dropbox estimator: dictionaries, keyboard patterns, dates, l33t substitutions) rather
than composition rules, which push people to `Password1!`; the e-mail address and broker name are
given to it as `user_inputs`, so `acmefx2026` for Acme FX counts as guessable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from zxcvbn import zxcvbn

from veles.services.errors import InvalidInput

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
# zxcvbn scores 0-4; 3 means about 10^8 guesses or more ("safely unguessable" for an online attack
# slowed by the sign-in throttle), the level its authors suggest for accounts worth protecting.
MIN_SCORE = 3
# zxcvbn's work grows with the length; past this prefix a password is long enough that the rest
# cannot make it guessable, so the estimate looks at the prefix only.
_ESTIMATE_CHARS = 100
_WORDS = re.compile(r"[^\W_]+")


def personal_words(*values: str | None) -> list[str]:
    """What a password must not be built from: each value whole, run together (`acmefx` for
    "Acme FX") and its words (an e-mail's local part and domain labels, a broker name's words),
    lower case, at least three characters; and the product's own name."""
    words: set[str] = {"veles"}
    for value in values:
        if not value:
            continue
        text = value.strip().lower()
        parts = _WORDS.findall(text)
        words.update([text, "".join(parts)])
        words.update(word for word in parts if len(word) >= 3)
    return sorted(word for word in words if word)


def weakness(password: str, user_inputs: Iterable[str] = ()) -> str | None:
    """Why the password is too easy to guess (zxcvbn's warning and suggestions), or None."""
    result = zxcvbn(password[:_ESTIMATE_CHARS], user_inputs=list(user_inputs))
    if result["score"] >= MIN_SCORE:
        return None
    feedback = result["feedback"]
    parts = [feedback.get("warning") or "", *feedback.get("suggestions", [])]
    advice = " ".join(part.strip() for part in parts if part and part.strip())
    return f"This password is too easy to guess. {advice or 'Add more words or less common ones.'}"


def check_password(password: str, confirm: str | None = None, *, user_inputs: Iterable[str] = (),
                   field: str = "password") -> None:
    """InvalidInput naming `field` unless the password is `MIN_PASSWORD`..`MAX_PASSWORD` characters
    and not guessable; `confirm`, when given, must repeat it (refused as field `confirm`)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(field, f"Password must be at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(field, f"Password must be at most {MAX_PASSWORD} characters.")
    reason = weakness(password, user_inputs)
    if reason is not None:
        raise InvalidInput(field, reason)
    if confirm is not None and confirm != password:
        raise InvalidInput("confirm", "The two passwords differ.")
