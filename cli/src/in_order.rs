//! Releasing out-of-order completions in order.
//!
//! `run` finishes its jobs in whatever order the worker threads happen to finish them.
//! A CI log holds stdout and stderr interleaved, so progress lines printed in
//! completion order would make two runs of the same suite differ. [`InOrder`] holds each
//! job's line until every earlier job has finished, then releases them by job index: the
//! log is the same bytes for the same inputs whatever `--jobs` or the machine's timing.

use std::collections::BTreeMap;

/// Items keyed by index, handed in any order, released in index order from 0.
#[derive(Debug)]
pub(crate) struct InOrder<T> {
    /// The index of the next item to release.
    next: usize,
    /// Items handed in ahead of their turn.
    waiting: BTreeMap<usize, T>,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        InOrder {
            next: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl<T> InOrder<T> {
    /// Takes item `index` and returns, in order, every item whose turn has now come:
    /// none while an earlier index is missing. Each index is handed in once.
    pub(crate) fn push(&mut self, index: usize, item: T) -> Vec<(usize, T)> {
        debug_assert!(index >= self.next && !self.waiting.contains_key(&index));
        self.waiting.insert(index, item);
        let mut ready = Vec::new();
        while let Some(item) = self.waiting.remove(&self.next) {
            ready.push((self.next, item));
            self.next += 1;
        }
        ready
    }

    /// Items still held back (an earlier one has not come in).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn holds_until_the_gap_fills() {
        let mut q = InOrder::default();
        assert!(q.push(2, 'c').is_empty());
        assert!(q.push(1, 'b').is_empty());
        assert_eq!(q.waiting(), 2);
        assert_eq!(q.push(0, 'a'), vec![(0, 'a'), (1, 'b'), (2, 'c')]);
        assert_eq!(q.push(3, 'd'), vec![(3, 'd')]);
        assert_eq!(q.waiting(), 0);
    }

    proptest! {
        /// Whatever the completion order, the released sequence is 0, 1, 2, … and
        /// nothing is held back at the end.
        #[test]
        fn any_completion_order_is_released_in_index_order(
            order in (0usize..40).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        ) {
            let mut q = InOrder::default();
            let mut released = Vec::new();
            for i in &order {
                released.extend(q.push(*i, *i * 10).into_iter());
            }
            let expected: Vec<(usize, usize)> = (0..order.len()).map(|i| (i, i * 10)).collect();
            prop_assert_eq!(released, expected);
            prop_assert_eq!(q.waiting(), 0);
        }
    }
}
