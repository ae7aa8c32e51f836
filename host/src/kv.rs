//! A database's state: an ordered in-memory key-value store, and the transaction a call
//! writes into until it succeeds.
//!
//! A call never writes the store directly. Its `put` and `delete` go to a [`Transaction`]
//! that records the latest write of each key (a value, or a deletion); its reads look at the
//! transaction first and the store second. When the call succeeds the transaction is
//! committed in one step; when it fails, it is dropped and nothing of it is visible.

use std::collections::BTreeMap;
use std::ops::Bound;

/// The committed key-value pairs of one database, ordered by key bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    pairs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Kv {
    /// The committed value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.pairs.get(key).map(Vec::as_slice)
    }

    /// How many keys are stored.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Every pair, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs
            .iter()
            .map(|(key, value)| (key.as_slice(), value.as_slice()))
    }
}

/// The writes of one call, not yet visible to any other.
#[derive(Debug, Default)]
pub struct Transaction {
    /// The latest write of each key: `Some(value)` to set, `None` to delete.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Transaction {
    /// The value of `key` as this call sees it.
    pub fn get<'a>(&'a self, base: &'a Kv, key: &[u8]) -> Option<&'a [u8]> {
        match self.writes.get(key) {
            Some(written) => written.as_deref(),
            None => base.get(key),
        }
    }

    /// Sets `key` to `value`, for this call.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
    }

    /// Deletes `key`, for this call. Returns whether it was there.
    pub fn delete(&mut self, base: &Kv, key: &[u8]) -> bool {
        let existed = self.get(base, key).is_some();
        self.writes.insert(key.to_vec(), None);
        existed
    }

    /// The smallest key at or after `start` that exists as this call sees it: the store's keys
    /// and this call's writes, merged, with its deletions hidden.
    pub fn scan_from<'a>(&'a self, base: &'a Kv, start: &[u8]) -> Option<&'a [u8]> {
        let from = (Bound::Included(start), Bound::Unbounded);
        let mut committed = base
            .pairs
            .range::<[u8], _>(from)
            .map(|(key, _)| key)
            .peekable();
        let mut written = self.writes.range::<[u8], _>(from).peekable();
        loop {
            match (committed.peek(), written.peek()) {
                (None, None) => return None,
                (Some(key), None) => return Some(key),
                (None, Some((key, value))) => {
                    if value.is_some() {
                        return Some(key);
                    }
                    written.next();
                }
                (Some(old), Some((new, value))) => {
                    if old < new {
                        return Some(old);
                    }
                    if value.is_some() {
                        return Some(new);
                    }
                    // A deletion: skip it, and the committed key it hides.
                    if old == new {
                        committed.next();
                    }
                    written.next();
                }
            }
        }
    }

    /// Whether the call wrote nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Applies every write to `base`, in key order.
    pub fn commit(self, base: &mut Kv) {
        // Most calls write nothing; walking an empty map still costs a hundred instructions.
        if self.writes.is_empty() {
            return;
        }
        for (key, value) in self.writes {
            match value {
                Some(value) => {
                    base.pairs.insert(key, value);
                }
                None => {
                    base.pairs.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(pairs: &[(&str, &str)]) -> Kv {
        let mut kv = Kv::default();
        let mut tx = Transaction::default();
        for (key, value) in pairs {
            tx.put(key.as_bytes(), value.as_bytes());
        }
        tx.commit(&mut kv);
        kv
    }

    fn scan_all(tx: &Transaction, base: &Kv) -> Vec<String> {
        let mut keys = Vec::new();
        let mut start = Vec::new();
        while let Some(key) = tx.scan_from(base, &start) {
            keys.push(String::from_utf8(key.to_vec()).unwrap());
            start = key.to_vec();
            start.push(0);
        }
        keys
    }

    #[test]
    fn reads_see_the_calls_own_writes_first() {
        let base = store(&[("a", "1"), ("b", "2")]);
        let mut tx = Transaction::default();
        tx.put(b"a", b"10");
        assert!(tx.delete(&base, b"b"));
        assert!(!tx.delete(&base, b"zz"));
        assert_eq!(tx.get(&base, b"a"), Some(&b"10"[..]));
        assert_eq!(tx.get(&base, b"b"), None);
        assert_eq!(
            base.get(b"a"),
            Some(&b"1"[..]),
            "the store is untouched before commit"
        );
    }

    #[test]
    fn scan_merges_writes_and_hides_deletions() {
        let base = store(&[("a", "1"), ("c", "3"), ("e", "5")]);
        let mut tx = Transaction::default();
        tx.put(b"b", b"2");
        tx.delete(&base, b"c");
        tx.put(b"f", b"6");
        tx.delete(&base, b"g");
        assert_eq!(scan_all(&tx, &base), vec!["a", "b", "e", "f"]);
        assert_eq!(tx.scan_from(&base, b"c"), Some(&b"e"[..]));
    }

    #[test]
    fn commit_applies_every_write_and_dropping_applies_none() {
        let mut base = store(&[("a", "1"), ("b", "2")]);
        let mut dropped = Transaction::default();
        dropped.put(b"x", b"9");
        drop(dropped);
        assert_eq!(base.len(), 2);

        let mut tx = Transaction::default();
        tx.put(b"c", b"3");
        tx.delete(&base, b"a");
        tx.commit(&mut base);
        let pairs: Vec<_> = base.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(
            pairs,
            vec![
                (b"b".to_vec(), b"2".to_vec()),
                (b"c".to_vec(), b"3".to_vec())
            ]
        );
    }
}
