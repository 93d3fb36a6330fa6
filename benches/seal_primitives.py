"""Native Microsoft SEAL's BFV primitive costs, for comparison with the
primitives that `explore he-bench` measures on the same machine (N = 8192,
fhe.rs computing on four ciphertext primes of 54, 54, 55 and 55 bits, a
25-bit batching plaintext prime):

    python3 -m venv /tmp/sealenv && /tmp/sealenv/bin/pip install tenseal
    /tmp/sealenv/bin/python benches/seal_primitives.py --repeat 20
    cargo run --release -- he-bench --model resnet20 --dataset cifar10 --repeat 20

TenSEAL (on PyPI) bundles SEAL 4 and exposes its C++ API as
`tenseal.sealapi`; the calls below go straight to SEAL, the Python overhead
is one call per operation. Each figure is the minimum over `--repeat` runs,
as in explore's own measurement.

SEAL keeps the last prime of its coefficient modulus as the special prime
of key switching and computes on the others, where fhe.rs computes on all of
them. So SEAL is measured two ways:

- equal work: four data primes of fhe.rs's sizes plus a 55-bit special
  prime, the same work per operation as fhe.rs. Its 273-bit total modulus
  is above the 128-bit bound for N = 8192 (218 bits), so SEAL runs it with
  its security check off: a like-for-like timing, not a deployable setting.
- SEAL's own 128-bit parameters for these layers: 54, 54, 55 and 55 bits,
  the last the special prime, so three data primes.
"""
import argparse
import json
import random
import time

import tenseal.sealapi as seal


def best_ms(f, repeat):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, (time.perf_counter() - t) * 1e3)
    return best


def measure(moduli, security, repeat):
    """Minimum times of one rotation, ct x pt (plain and with both operands
    in NTT form) and ct + ct under `moduli` (the last is SEAL's special
    prime)."""
    n = 8192
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.BFV)
    parms.set_poly_modulus_degree(n)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(n, moduli))
    parms.set_plain_modulus(seal.PlainModulus.Batching(n, 25))
    ctx = seal.SEALContext(parms, True, security)

    keygen = seal.KeyGenerator(ctx)
    pk = seal.PublicKey()
    keygen.create_public_key(pk)
    galois = seal.GaloisKeys()
    keygen.create_galois_keys(galois)  # every power-of-two step, 1 included
    encoder = seal.BatchEncoder(ctx)
    encryptor = seal.Encryptor(ctx, pk)
    evaluator = seal.Evaluator(ctx)

    values = [random.randrange(-3, 4) for _ in range(n)]
    pt = seal.Plaintext()
    encoder.encode(values, pt)
    ct = seal.Ciphertext()
    encryptor.encrypt(pt, ct)
    out = seal.Ciphertext()

    rot = best_ms(lambda: evaluator.rotate_rows(ct, 1, galois, out), repeat)
    pmul = best_ms(lambda: evaluator.multiply_plain(ct, pt, out), repeat)
    add = best_ms(lambda: evaluator.add(ct, ct, out), repeat)
    # What a deployed conv does: weights encoded once in NTT form, the
    # ciphertext kept in NTT form across its products.
    pt_ntt, ct_ntt = seal.Plaintext(), seal.Ciphertext()
    evaluator.transform_to_ntt(pt, ct.parms_id(), pt_ntt)
    evaluator.transform_to_ntt(ct, ct_ntt)
    pmul_ntt = best_ms(lambda: evaluator.multiply_plain(ct_ntt, pt_ntt, out), repeat)
    return rot, pmul, pmul_ntt, add


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument(
        "--json",
        help="write SEAL's own 128-bit setting's costs here, for explore he-bench --anchor",
    )
    args = ap.parse_args()
    settings = [
        (
            "equal work: 4 data primes (54, 54, 55, 55) + a 55-bit special prime, "
            "273 bits, above the 128-bit bound (security check off)",
            [54, 54, 55, 55, 55],
            seal.SEC_LEVEL_TYPE.NONE,
        ),
        (
            "SEAL's own 128-bit parameters: 54, 54, 55, 55 bits, the last the "
            "special prime (3 data primes)",
            [54, 54, 55, 55],
            seal.SEC_LEVEL_TYPE.TC128,
        ),
    ]
    for label, moduli, security in settings:
        rot, pmul, pmul_ntt, add = measure(moduli, security, args.repeat)
        print(
            f"SEAL BFV at N = 8192, {label} (min of {args.repeat}): "
            f"rotation {rot:.3f} ms, ct x pt {pmul:.3f} ms "
            f"({pmul_ntt:.3f} ms with both in NTT form), ct + ct {add:.4f} ms"
        )
    if args.json:
        # The last setting, SEAL's own 128-bit one; products as a deployed
        # conv runs them, both operands in NTT form.
        with open(args.json, "w") as f:
            json.dump(
                {
                    "setting": "SEAL 4, 54+54+55 data primes and a 55-bit special prime, 1 thread",
                    "rot_ms": rot,
                    "pmul_ms": pmul_ntt,
                    "add_ms": add,
                },
                f,
            )


if __name__ == "__main__":
    main()
