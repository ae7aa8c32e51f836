//! The fuzz harness of `fuzz/` (included from `fuzz/harness.rs`, so that both run the same
//! code) on a few hundred seeded random inputs: wasm-smith turns each into a valid reducer
//! module, and every call must end with a result or a typed error a module can cause, with
//! no panic and no hang, while a neighbour on the same worker keeps counting.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::collections::BTreeMap;

use harness::{Harness, Outcome};

/// How many inputs the smoke run makes.
const INPUTS: usize = 300;

/// A small deterministic generator (splitmix64), so that every run sees the same inputs.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Between 16 and 4096 random bytes.
    fn input(&mut self) -> Vec<u8> {
        let len = 16 + (self.next() % 4081) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// An error's variant name, from its `Debug` form.
fn variant(error: &impl std::fmt::Debug) -> String {
    let debug = format!("{error:?}");
    let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
    debug[..end].to_owned()
}

#[test]
fn seeded_random_modules_end_every_call_with_a_result_or_a_typed_error() {
    let harness = Harness::new();
    let mut seeded = Seeded(0x00c0_4e1a_9e5e_ed00);
    let mut ran = 0;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..INPUTS {
        // The harness panics if the host breaks the property.
        let key = match harness.run(&seeded.input()) {
            Outcome::Skipped => "skipped".to_owned(),
            Outcome::Refused(error) => format!("refused: {}", variant(&error)),
            Outcome::Ran(calls) => {
                ran += 1;
                for call in calls {
                    let key = match call {
                        Ok(_) => "call: ok".to_owned(),
                        Err(error) => format!("call: {}", variant(&error)),
                    };
                    *outcomes.entry(key).or_default() += 1;
                }
                continue;
            }
        };
        *outcomes.entry(key).or_default() += 1;
    }
    eprintln!("{ran} of {INPUTS} inputs ran; {outcomes:#?}");

    // The run is only worth something if most modules compiled and their calls went both
    // ways. Which calls time out depends on the machine's speed, so only these are counted.
    assert!(ran >= INPUTS / 2, "{ran} of {INPUTS} ran: {outcomes:?}");
    assert!(outcomes.contains_key("call: ok"), "{outcomes:?}");
    assert!(
        outcomes.keys().any(|key| key.starts_with("call: Trap")),
        "{outcomes:?}"
    );
}
