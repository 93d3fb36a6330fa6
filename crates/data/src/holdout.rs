//! The validation split: which training images are held out. Stratified by
//! class (each class gives its share of the held-out images, so validation
//! has the class balance of the training split), deterministic in the data
//! seed, and disjoint from what is left to train on. Pure functions.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// Mixed into the data seed so the held-out images are not the ones a
/// `train_size` subset with the same seed would draw first.
const SALT: u64 = 0x7661_6c69_6461_7465; // "validate"

/// Sorted indices of `n` images held out of a split with these labels:
/// per class, its share of `n` by largest remainder (so the shares sum to
/// `n`), drawn without replacement. Empty for `n = 0`. `Err(len)` when `n`
/// would leave no image to train on.
pub fn validation_indices(labels: &[u16], n: usize, seed: u64) -> Result<Vec<usize>, usize> {
    let len = labels.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    if n >= len {
        return Err(len);
    }
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        members[l as usize].push(i);
    }
    let mut rng = StdRng::seed_from_u64(seed ^ SALT);
    let mut held = Vec::with_capacity(n);
    for (class, take) in shares(&members, n, len).into_iter().enumerate() {
        let pool = &members[class];
        let picked = rand::seq::index::sample(&mut rng, pool.len(), take);
        held.extend(picked.into_iter().map(|j| pool[j]));
    }
    held.sort_unstable();
    Ok(held)
}

/// Each class's share of `n` held-out images: the floor of its exact share
/// `n * size / len`, plus one for the classes with the largest remainders
/// (ties to the lower class) until the shares sum to `n`.
fn shares(members: &[Vec<usize>], n: usize, len: usize) -> Vec<usize> {
    let exact: Vec<(usize, usize)> = members
        .iter()
        .map(|m| (n * m.len() / len, n * m.len() % len))
        .collect();
    let mut out: Vec<usize> = exact.iter().map(|e| e.0).collect();
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(exact[c].1));
    let missing = n - out.iter().sum::<usize>();
    for &c in order.iter().take(missing) {
        out[c] += 1;
    }
    out
}

/// The indices in `0..len` that are not in the sorted `held`.
pub fn complement(len: usize, held: &[usize]) -> Vec<usize> {
    let mut rest = Vec::with_capacity(len - held.len());
    let mut next = held.iter().peekable();
    for i in 0..len {
        if next.peek() == Some(&&i) {
            next.next();
        } else {
            rest.push(i);
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 classes, class c holding 10 * (c + 1) images, interleaved.
    fn labels() -> Vec<u16> {
        let mut out = Vec::new();
        for round in 0..100 {
            for c in 0..10u16 {
                if round < 10 * (c as usize + 1) {
                    out.push(c);
                }
            }
        }
        out
    }

    #[test]
    fn held_out_images_follow_the_class_balance_and_sum_to_n() {
        let labels = labels();
        assert_eq!(labels.len(), 550);
        let held = validation_indices(&labels, 55, 3).unwrap();
        assert_eq!(held.len(), 55);
        for c in 0..10u16 {
            let got = held.iter().filter(|&&i| labels[i] == c).count();
            assert_eq!(got, c as usize + 1, "class {c}");
        }
        // Shares that do not divide evenly still sum to n.
        let odd = validation_indices(&labels, 37, 3).unwrap();
        assert_eq!(odd.len(), 37);
        for c in 0..10u16 {
            let exact = 37.0 * 10.0 * (c as f64 + 1.0) / 550.0;
            let got = odd.iter().filter(|&&i| labels[i] == c).count() as f64;
            assert!((got - exact).abs() < 1.0, "class {c}: {got} vs {exact}");
        }
    }

    #[test]
    fn the_split_is_deterministic_disjoint_and_covers_everything() {
        let labels = labels();
        let held = validation_indices(&labels, 100, 7).unwrap();
        assert_eq!(held, validation_indices(&labels, 100, 7).unwrap());
        assert_ne!(held, validation_indices(&labels, 100, 8).unwrap());
        assert!(held.windows(2).all(|w| w[0] < w[1]));
        let rest = complement(labels.len(), &held);
        assert_eq!(rest.len(), 450);
        assert!(rest.iter().all(|i| held.binary_search(i).is_err()));
        let mut all: Vec<usize> = held.iter().chain(&rest).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..550).collect::<Vec<_>>());
    }

    #[test]
    fn nothing_is_held_out_for_zero_and_everything_is_refused() {
        let labels = labels();
        assert_eq!(validation_indices(&labels, 0, 1), Ok(Vec::new()));
        assert_eq!(complement(550, &[]).len(), 550);
        assert_eq!(validation_indices(&labels, 550, 1), Err(550));
        assert_eq!(validation_indices(&labels, 9999, 1), Err(550));
        assert_eq!(validation_indices(&labels, 549, 1).unwrap().len(), 549);
    }
}
