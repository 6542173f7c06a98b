"""A labelled corpus for the PII detectors, generated with a fixed seed (docs/guardrails.md).

Entities sit in natural sentences, phones and IBANs in several locales and formats, next
to hard negatives: order and invoice numbers, timestamps and dates, version strings,
hashes and digests that look like keys, UUIDs, prices, MAC addresses, tracking codes.
Every generated value is valid by its own rules (Luhn, mod-97 and the country's format,
the region's number plan, the SSA's ranges), so a miss is the detector's.

    .venv/bin/python -m tests.guardrails.corpus      # recall and precision per entity type
"""

# ruff: noqa: E501  (the hard negatives read best one generator a line)

from __future__ import annotations

import base64
import ipaddress
import random
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

from trimtab.config import PII_ENTITIES

SEED = 15
PER_ENTITY = 260  # snippets that carry each entity type (some carry two)
NEGATIVES = 700


@dataclass(frozen=True, slots=True)
class Snippet:
    text: str
    labels: tuple[tuple[str, int, int], ...]  # (entity, start, end)


# -- values ----------------------------------------------------------------------------------

_FIRST = ["jane", "john", "maria", "li", "ahmed", "olga", "pierre", "sofia", "kenji", "ana"]
_LAST = ["doe", "smith", "garcia", "wang", "khan", "ivanova", "dubois", "rossi", "sato", "silva"]
_DOMAINS = [
    "example.com", "mail.example.org", "acme.co.uk", "uni-berlin.de", "corp.example.io",
    "post.example.fr", "example.com.br", "shop.example.co.jp", "example.net", "it.example.es",
]  # fmt: skip


def email(rng: random.Random) -> str:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    local = rng.choice(
        [f"{first}.{last}", f"{first}{rng.randint(1, 99)}", f"{first}_{last}", f"{first}+news"]
    )
    return f"{local}@{rng.choice(_DOMAINS)}"


_PHONE_REGIONS = ["US", "GB", "DE", "FR", "IN", "JP", "BR", "AU", "ES", "IT", "NL", "MX"]
_PHONE_TYPES = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]


def phone(rng: random.Random) -> str:
    region = rng.choice(_PHONE_REGIONS)
    example = phonenumbers.example_number_for_type(region, rng.choice(_PHONE_TYPES))
    assert example is not None
    national = str(example.national_number)
    for _ in range(50):  # vary the subscriber digits until the number is valid again
        tail = "".join(rng.choice(string.digits) for _ in range(4))
        candidate = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{tail}")
        if phonenumbers.is_valid_number(candidate):
            break
    else:
        candidate = example
    if region == "US" and rng.random() < 0.6:  # written the national way
        digits = str(candidate.national_number)
        return rng.choice(
            [
                f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
                f"{digits[:3]}-{digits[3:6]}-{digits[6:]}",
                f"{digits[:3]}.{digits[3:6]}.{digits[6:]}",
            ]
        )
    style = rng.choice(
        [phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.E164]
    )
    return phonenumbers.format_number(candidate, style)


_CARD_PREFIXES = [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("6011", 16), ("34", 15)]
_CARD_PREFIXES += [("37", 15), ("3530", 16), ("4", 13), ("65", 16)]


def credit_card(rng: random.Random) -> str:
    prefix, length = rng.choice(_CARD_PREFIXES)
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    digits = body + luhn.calc_check_digit(body)
    sep = rng.choice([" ", "-", ""])
    if length == 15:
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    if length == 13:
        return digits
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


# (country, BBAN layout: n digits, a capitals, c alphanumerics)
_IBAN_LAYOUTS = {
    "DE": "18n", "GB": "4a14n", "FR": "10n11c2n", "ES": "20n", "IT": "1a10n12c",
    "NL": "4a10n", "BE": "12n", "CH": "5n12c", "PL": "24n", "SE": "20n", "AT": "16n",
    "IE": "4a14n",
}  # fmt: skip


def _bban(rng: random.Random, layout: str) -> str:
    out, n = [], ""
    for ch in layout:
        if ch.isdigit():
            n += ch
            continue
        chars = {"n": string.digits, "a": string.ascii_uppercase}.get(
            ch, string.digits + string.ascii_uppercase
        )
        out.append("".join(rng.choice(chars) for _ in range(int(n))))
        n = ""
    return "".join(out)


def iban(rng: random.Random) -> str:
    country = rng.choice(sorted(_IBAN_LAYOUTS))
    for _ in range(20_000):  # national check digits (BE, ES, FR, ...) must hold too
        bban = _bban(rng, _IBAN_LAYOUTS[country])
        check = stdnum_iban.calc_check_digits(country + "00" + bban)
        value = country + check + bban
        if stdnum_iban.is_valid(value):
            break
    else:
        raise AssertionError(f"no valid {country} IBAN generated")
    if rng.random() < 0.5:
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def ip(rng: random.Random) -> str:
    if rng.random() < 0.65:
        return str(ipaddress.IPv4Address(rng.getrandbits(32)))
    address = ipaddress.IPv6Address(rng.getrandbits(128))
    if rng.random() < 0.4:  # with a run of zeros, written compressed
        groups = address.exploded.split(":")
        start = rng.randint(1, 5)
        for i in range(start, start + 2):
            groups[i] = "0000"
        address = ipaddress.IPv6Address(":".join(groups))
        return str(address)
    return address.exploded if rng.random() < 0.5 else str(address)


_B62 = string.ascii_letters + string.digits


def _rand(rng: random.Random, n: int, alphabet: str = _B62) -> str:
    while True:
        value = "".join(rng.choice(alphabet) for _ in range(n))
        has = (any(c.isupper() for c in value), any(c.islower() for c in value))
        if alphabet != _B62 or (all(has) and any(c.isdigit() for c in value)):
            return value


def api_key(rng: random.Random) -> str:
    kind = rng.randrange(11)
    if kind == 0:
        return "sk-ant-api03-" + _rand(rng, 80, _B62 + "-_")
    if kind == 1:
        return "sk-proj-" + _rand(rng, 48, _B62 + "-_")
    if kind == 2:
        return "ghp_" + _rand(rng, 36)
    if kind == 3:
        return "github_pat_" + _rand(rng, 22) + "_" + _rand(rng, 59)
    if kind == 4:
        return f"xoxb-{rng.randint(10**11, 10**12)}-{rng.randint(10**11, 10**12)}-" + _rand(rng, 24)
    if kind == 5:
        return "AKIA" + _rand(rng, 16, string.ascii_uppercase + string.digits)
    if kind == 6:
        return "AIza" + _rand(rng, 35, _B62 + "-_")
    if kind == 7:
        return "sk_live_" + _rand(rng, 24)
    if kind == 8:
        return "glpat-" + _rand(rng, 20)
    if kind == 9:
        return "hf_" + _rand(rng, 34)
    return _rand(rng, rng.randint(32, 48))  # no known prefix: the entropy rule


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(rng: random.Random) -> str:
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    claims = {
        "sub": str(rng.randint(1, 10**9)),
        "iat": rng.randint(1_600_000_000, 1_800_000_000),
        "name": "x",
    }
    signature = bytes(rng.getrandbits(8) for _ in range(32))
    parts = [orjson.dumps(header), orjson.dumps(claims)]
    return ".".join([*(_b64url(p) for p in parts), _b64url(signature)])


VALUES = {
    "email": email,
    "phone": phone,
    "credit_card": credit_card,
    "iban": iban,
    "ssn": ssn,
    "ip": ip,
    "api_key": api_key,
    "jwt": jwt,
}

_SENTENCES = {
    "email": [
        "You can reach me at {} any time.",
        "Please send the invoice to {}.",
        "Contact: {}",
        "my email is {}, thanks!",
        "CC {} on the reply (and keep it short).",
    ],
    "phone": [
        "Call me on {} after six.",
        "My number is {}.",
        "Phone: {}",
        "If it's urgent, ring {} and ask for Sam.",
        "The hotel's desk ({}) never answered.",
    ],
    "credit_card": [
        "My card number is {} and it expires 09/27.",
        "Charge {} for the upgrade.",
        "card: {}",
        "I paid with {}, but the order never shipped.",
    ],
    "iban": [
        "Please wire the refund to {}.",
        "IBAN: {}",
        "Our account is {} at the local bank.",
        "Transfer the deposit to {} by Friday.",
    ],
    "ssn": [
        "My SSN is {}.",
        "social security number {} for the tax form",
        "SSN: {}",
        "The applicant's number ({}) was on the letter.",
    ],
    "ip": [
        "The requests came from {} last night.",
        "Whitelist {} please.",
        "client ip={} user-agent=curl",
        "Our VPN exits at {}; the firewall blocks it.",
    ],
    "api_key": [
        "Here is my key: {}",
        "export API_KEY={}",
        "I accidentally pasted {} in the channel.",
        'config = {{"token": "{}"}}',
    ],
    "jwt": [
        "Authorization: Bearer {}",
        "The session token {} expired.",
        "cookie: session={}; path=/",
    ],
}

_NEGATIVE: list[Callable[[random.Random], str]] = [
    lambda r: f"Order #{r.randint(10**7, 10**8)} shipped on {r.randint(1, 28)} March.",
    lambda r: f"Your order ORD-{r.randint(2019, 2026)}-{r.randint(100000, 999999)} is ready.",
    lambda r: f"Invoice {r.randint(2019, 2026)}-{r.randint(1, 999999):06d} is due.",
    lambda r: f"Logged at {r.randint(2019, 2026)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} "
    f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d} UTC.",
    lambda r: f"at {r.randint(2019, 2026)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T"
    f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z the job failed",
    lambda r: f"Meet on {r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(2019, 2026)}.",
    lambda r: f"Upgrade to v{r.randint(0, 20)}.{r.randint(0, 40)}.{r.randint(0, 99)} first.",
    lambda r: f"version {r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}-rc.{r.randint(1, 5)}",
    lambda r: f"Windows build 10.0.{r.randint(10000, 22631)}.{r.randint(1, 3000)} is affected.",
    lambda r: f"sha256 {''.join(r.choice('0123456789abcdef') for _ in range(64))}",
    lambda r: f"commit {''.join(r.choice('0123456789abcdef') for _ in range(40))} broke it",
    lambda r: f"md5: {''.join(r.choice('0123456789abcdef') for _ in range(32))}",
    lambda r: "integrity sha384-" + base64.b64encode(r.randbytes(48)).decode(),
    lambda r: "digest sha256:" + "".join(r.choice("0123456789abcdef") for _ in range(64)),
    lambda r: f"request id {r.randbytes(16).hex()[:8]}-{r.randbytes(2).hex()}-4{r.randbytes(2).hex()[1:]}"
    f"-a{r.randbytes(2).hex()[1:]}-{r.randbytes(6).hex()}",
    lambda r: f"It costs ${r.randint(1, 99)},{r.randint(100, 999)}.{r.randint(10, 99)} in total.",
    lambda r: f"We have {r.randint(1, 999)},{r.randint(100, 999)},{r.randint(100, 999)} users.",
    lambda r: f"Tracking 1Z{''.join(r.choice(string.ascii_uppercase + string.digits) for _ in range(16))}",
    lambda r: f"The MAC is {':'.join(r.randbytes(6).hex()[i : i + 2] for i in range(0, 12, 2))}.",
    lambda r: f"Screen ratio 16:9, run time {r.randint(1, 3)}:{r.randint(10, 59)}:{r.randint(10, 59)}.",
    lambda r: f"ISBN 978-{r.randint(0, 9)}-{r.randint(10, 99)}-{r.randint(100000, 999999)}-{r.randint(0, 9)}",
    lambda r: f"Room {r.randint(100, 2999)}, floor {r.randint(1, 30)}, zip {r.randint(10000, 99999)}.",
    lambda r: f"Flight UA {r.randint(100, 9999)} leaves at {r.randint(1, 12)}:{r.randint(10, 59)} pm.",
    lambda r: f"localhost:{r.randint(1024, 65535)} answered with HTTP {r.choice([200, 404, 503])}.",
    lambda r: f"Ticket JIRA-{r.randint(100, 99999)} and PR #{r.randint(100, 9999)} are linked.",
    lambda r: f"The reading was {r.randint(100, 999)}.{r.randint(100, 999)}.{r.randint(100, 999)} "
    "on the meter.",
    lambda r: f"Reference: {r.randint(10**11, 10**12)} (keep it for your records).",
    lambda r: f"card ending in {r.randint(1000, 9999)} was declined",
    lambda r: f"Use the variable {r.choice(['MAX_RETRIES', 'maxRetryCountPerRequestWindow', 'user_session_timeout_seconds'])}.",
    lambda r: "See https://docs.example.com/guides/getting-started/install-on-linux for details.",
]  # fmt: skip


def build(seed: int = SEED) -> list[Snippet]:
    """The corpus: PER_ENTITY snippets for each entity type, a quarter with a second
    entity, and NEGATIVES snippets of hard negatives (some beside entities)."""
    rng = random.Random(seed)
    out: list[Snippet] = []
    for entity in PII_ENTITIES:
        for _ in range(PER_ENTITY):
            parts = [(entity, VALUES[entity](rng))]
            if rng.random() < 0.25:
                other = rng.choice(PII_ENTITIES)
                parts.append((other, VALUES[other](rng)))
            if rng.random() < 0.2:
                parts.append(("", rng.choice(_NEGATIVE)(rng)))
            out.append(_compose(rng, parts))
    for _ in range(NEGATIVES):
        out.append(_compose(rng, [("", rng.choice(_NEGATIVE)(rng))]))
    return out


def _compose(rng: random.Random, parts: list[tuple[str, str]]) -> Snippet:
    text, labels = "", []
    for entity, value in parts:
        if text:
            text += rng.choice([" ", " Also, ", "\n", " — "])
        if not entity:
            text += value
            continue
        sentence = rng.choice(_SENTENCES[entity])
        before, after = sentence.split("{}")
        before = before.replace("{{", "{").replace("}}", "}")
        after = after.replace("{{", "{").replace("}}", "}")
        start = len(text) + len(before)
        text += before + value + after
        labels.append((entity, start, start + len(value)))
    return Snippet(text, tuple(labels))


@dataclass(frozen=True, slots=True)
class Score:
    entity: str
    labelled: int
    found: int  # labels found with the right type and exact offsets
    reported: int  # findings of this type
    correct: int  # findings that are a label

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.reported if self.reported else 1.0


def measure(snippets: list[Snippet]) -> dict[str, Score]:
    """Recall and precision per entity type of guardrails.pii.detect over the corpus."""
    from trimtab.guardrails.pii import detect

    labelled: Counter[str] = Counter()
    found: Counter[str] = Counter()
    reported: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for s in snippets:
        truth = set(s.labels)
        got = {(f.entity, f.start, f.end) for f in detect(s.text)}
        for entity, *_ in truth:
            labelled[entity] += 1
        for label in truth & got:
            found[label[0]] += 1
            correct[label[0]] += 1
        for entity, *_ in got:
            reported[entity] += 1
    return {e: Score(e, labelled[e], found[e], reported[e], correct[e]) for e in PII_ENTITIES}


def misses(
    snippets: list[Snippet],
) -> list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]]:
    """The snippets where detection and labels differ: (text, missed, spurious)."""
    from trimtab.guardrails.pii import detect

    out = []
    for s in snippets:
        truth = set(s.labels)
        got = {(f.entity, f.start, f.end) for f in detect(s.text)}
        if truth != got:
            missed = [(e, s.text[a:b]) for e, a, b in sorted(truth - got)]
            spurious = [(e, s.text[a:b]) for e, a, b in sorted(got - truth)]
            out.append((s.text, missed, spurious))
    return out


def main() -> None:
    snippets = build()
    print(f"{len(snippets)} snippets, seed {SEED}")
    print(f"{'entity':<12} {'labels':>6} {'recall':>8} {'findings':>8} {'precision':>9}")
    for score in measure(snippets).values():
        print(
            f"{score.entity:<12} {score.labelled:>6} {score.recall:>8.2%} "
            f"{score.reported:>8} {score.precision:>9.2%}"
        )


if __name__ == "__main__":
    main()
