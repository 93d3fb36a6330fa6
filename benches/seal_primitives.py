"""Native Microsoft SEAL's BFV primitive costs at the parameters `explore`
runs fhe.rs with (N = 8192, ciphertext moduli of 54, 54, 55, 55 bits, a
25-bit batching plaintext prime), for comparison with the primitives that
`explore he-bench` measures on the same machine:

    python3 -m venv /tmp/sealenv && /tmp/sealenv/bin/pip install tenseal
    /tmp/sealenv/bin/python benches/seal_primitives.py --repeat 20
    cargo run --release -- he-bench --model resnet20 --dataset cifar10 --repeat 20

TenSEAL (on PyPI) bundles SEAL 4 and exposes its C++ API as
`tenseal.sealapi`; the calls below go straight to SEAL, the Python overhead
is one call per operation. Each figure is the minimum over `--repeat` runs,
as in explore's own measurement. SEAL keeps the last modulus as its special
prime for key switching (fhe.rs decomposes over all four), so its
ciphertexts carry three moduli.
"""
import argparse
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()

    n = 8192
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.BFV)
    parms.set_poly_modulus_degree(n)
    parms.set_coeff_modulus(seal.CoeffModulus.Create(n, [54, 54, 55, 55]))
    parms.set_plain_modulus(seal.PlainModulus.Batching(n, 25))
    ctx = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)

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

    rot = best_ms(lambda: evaluator.rotate_rows(ct, 1, galois, out), args.repeat)
    pmul = best_ms(lambda: evaluator.multiply_plain(ct, pt, out), args.repeat)
    add = best_ms(lambda: evaluator.add(ct, ct, out), args.repeat)
    # What a deployed conv does: weights encoded once in NTT form, the
    # ciphertext kept in NTT form across its products.
    pt_ntt, ct_ntt = seal.Plaintext(), seal.Ciphertext()
    evaluator.transform_to_ntt(pt, ct.parms_id(), pt_ntt)
    evaluator.transform_to_ntt(ct, ct_ntt)
    pmul_ntt = best_ms(lambda: evaluator.multiply_plain(ct_ntt, pt_ntt, out), args.repeat)
    print(
        f"SEAL BFV at N = {n} (min of {args.repeat}): rotation {rot:.3f} ms, "
        f"ct x pt {pmul:.3f} ms ({pmul_ntt:.3f} ms with both in NTT form), "
        f"ct + ct {add:.4f} ms"
    )


if __name__ == "__main__":
    main()
