"""Verifies a JWT-SVID with PyJWT and the keys of a JWT bundle, as a Python service would.

Usage:
    jwt_verify.py --bundle JWT_BUNDLE_JSON --token TOKEN_FILE CHECK...

JWT_BUNDLE_JSON is the agent's jwt_bundle.json: {"<trust domain>": {"keys": [JWK, ...]}}. Each CHECK is
MODE:AUDIENCE, where MODE is
    now       verify as of now
    expired   verify as of one second past the token's exp
    tampered  verify a copy whose signature has one character changed

The key is chosen the way a SPIFFE validator chooses it: the bundle of the trust domain named by the
subject, then the JWK whose kid is the token's kid; the token's alg must fit that key (its alg when the
JWK names one, else its key type and curve), and PyJWT is allowed that one algorithm only.
The first output line names the versions; then one JSON line per check. The exit status is 0 when
every check ran, whatever the verdicts.
"""

import argparse
import json
import sys
import time
from urllib.parse import urlparse

import cryptography
import jwt


def tamper(token):
    head, body, sig = token.split(".")
    # Change a character in the middle of the signature, where every base64url bit is significant.
    i = len(sig) // 2
    sig = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1 :]
    return ".".join([head, body, sig])


def algorithms_for(jwk):
    """The JWS algorithms a JWT-SVID signed with this key may name (SPIFFE bundles need not set alg)."""
    if "alg" in jwk:
        return [jwk["alg"]]
    if jwk.get("kty") == "EC":
        return {"P-256": ["ES256"], "P-384": ["ES384"], "P-521": ["ES512"]}.get(jwk.get("crv"), [])
    if jwk.get("kty") == "RSA":
        return ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
    return []


def verify(token, bundle, audience, mode):
    header = jwt.get_unverified_header(token)
    unverified = jwt.decode(token, options={"verify_signature": False})
    subject = urlparse(unverified.get("sub", ""))
    if subject.scheme != "spiffe" or not subject.netloc:
        raise ValueError("sub is not a SPIFFE ID")
    keys = bundle.get(subject.netloc, {}).get("keys", [])
    jwk = next((k for k in keys if k.get("kid") == header.get("kid")), None)
    if jwk is None:
        raise ValueError(f"no key with kid {header.get('kid')!r} for trust domain {subject.netloc}")
    alg = header.get("alg")
    if alg not in algorithms_for(jwk):
        raise ValueError(f"the token's alg {alg!r} does not fit the {jwk.get('kty')} key {jwk.get('kid')!r}")
    key = jwt.PyJWK(jwk, algorithm=alg)
    options = {"require": ["sub", "aud", "exp"]}
    leeway = 0
    if mode == "expired":
        # A negative leeway moves PyJWT's clock forward: the exp check runs as of exp + 1 s. Only exp is
        # judged there (iat and nbf would be judged against the same shifted clock).
        leeway = -(int(unverified["exp"]) - int(time.time()) + 1)
        options.update({"verify_iat": False, "verify_nbf": False})
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[alg],
        audience=audience,
        leeway=leeway,
        options=options,
    )
    return header, claims


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("checks", nargs="+")
    args = parser.parse_args()
    with open(args.bundle, encoding="utf-8") as f:
        bundle = json.load(f)
    with open(args.token, encoding="utf-8") as f:
        token = f.read().strip()
    print(
        json.dumps(
            {
                "pyjwt": jwt.__version__,
                "cryptography": cryptography.__version__,
                "python": sys.version.split()[0],
                "executable": sys.executable,
            }
        ),
        flush=True,
    )
    for check in args.checks:
        mode, _, audience = check.partition(":")
        out = {"check": check}
        try:
            header, claims = verify(tamper(token) if mode == "tampered" else token, bundle, audience, mode)
            out.update(
                ok=True,
                alg=header["alg"],
                kid=header["kid"],
                sub=claims["sub"],
                aud=claims["aud"],
                exp=claims["exp"],
            )
        except (jwt.PyJWTError, ValueError, KeyError) as err:
            out.update(ok=False, error=type(err).__name__, message=str(err))
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
