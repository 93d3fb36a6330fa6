//! What the two-party steps of one private inference cost, on random
//! ResNet-20s: the quick spec's network (width 0.25, 1x28x28) and width 1
//! on CIFAR-10 (3x32x32). Per inference: ReLUs (pooled channels included),
//! AND gates, bytes offline (base OTs, garbled tables) and online (OT
//! extensions, labels, the output), rounds, and each party's time, the
//! parties in two threads of this process over a loopback TCP socket on
//! this machine's cores (garbling and evaluation in parallel over the
//! ReLUs), and the wall time of the whole inference. The linear layers
//! come from explore-private's dealer, so the HE layers' time is not in
//! it; the logits are checked against the integer model's.
//!
//! `cargo bench -p explore-private --bench resnet20`

use std::time::Instant;

use explore_he_model::arch::{Arch, DatasetKind, NetSpec};
use explore_private::{Modulus, Network, Plan, dealer};
use explore_quant::{QuantizedNet, fixtures};

fn main() {
    for (name, dataset, width) in [
        (
            "ResNet-20 width 0.25, 1x28x28",
            DatasetKind::FashionMnist,
            0.25,
        ),
        (
            "ResNet-20 width 1, CIFAR-10 3x32x32",
            DatasetKind::Cifar10,
            1.0,
        ),
    ] {
        let spec = NetSpec::new(Arch::ResNet20, dataset, width).expect("ResNet-20");
        let (c, h, w) = spec.dataset.input_shape();
        let folded = fixtures::random_folded(spec, 3);
        let net = QuantizedNet::new(
            &folded,
            fixtures::config(8),
            &fixtures::images_of(8, c * h * w, 1),
        )
        .expect("quantized");
        let t = fixtures::plaintext_modulus(&net);
        let modulus = Modulus::new(t).expect("an odd prime");
        let image = fixtures::images_of(1, c * h * w, 7);
        let plan = Plan::new(&net, modulus).expect("every step fits t");
        let start = Instant::now();
        let (logits, g) = dealer::infer(&net, &plan, Network::Loopback, &image, rand::random())
            .expect("an inference on shares");
        let total = start.elapsed().as_secs_f64();
        assert_eq!(logits, net.logits(&image).expect("the integer model")[0]);
        let mb = |b: usize| b as f64 / 1e6;
        println!(
            "{name}, t = {} ({} bits): {} ReLUs, {} AND gates ({:.0} per ReLU); offline {:.1} MB, online {:.1} MB up + {:.1} MB down; {} rounds; server {:.1} s, client {:.1} s; {:.1} s over the socket with the dealer; logits equal the integer model's",
            t,
            modulus.bits,
            g.relus,
            g.and_gates,
            g.and_gates as f64 / g.relus as f64,
            mb(g.offline_bytes),
            mb(g.online_client_bytes),
            mb(g.online_server_bytes),
            g.rounds,
            g.server_ms / 1e3,
            g.client_ms / 1e3,
            total,
        );
    }
}
