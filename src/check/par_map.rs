//! An order-keeping parallel map over scoped threads, for the check's CPU work
//! (parsing and canonicalising a fleet's configs).
//!
//! Owns only the splitting of a batch into one chunk per core. It must not know
//! what it maps, hold threads between calls or swallow a panic: a panic in `f`
//! resumes on the caller's thread, as if `f` had run there.

/// Below this many items a batch runs on the caller's thread: spawning costs
/// more than it saves.
const MIN_PARALLEL_ITEMS: usize = 64;

/// Maps `f` over `items` on every core, keeping the order.
pub(super) fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    par_map_owned(items.iter().collect(), f)
}

/// Like [`par_map`], consuming the items.
pub(super) fn par_map_owned<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || items.len() < MIN_PARALLEL_ITEMS {
        return items.into_iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut items = items.into_iter();
    loop {
        let c: Vec<T> = items.by_ref().take(chunk).collect();
        if c.is_empty() {
            break;
        }
        chunks.push(c);
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| scope.spawn(move || c.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_batch_keeps_its_order() {
        assert_eq!(par_map(&[3, 1, 2], |n| n * 10), vec![30, 10, 20]);
    }

    #[test]
    fn a_batch_split_across_threads_keeps_its_order() {
        let items: Vec<usize> = (0..1_000).collect();
        let mapped = par_map_owned(items, |n| n + 1);
        assert_eq!(mapped, (1..=1_000).collect::<Vec<_>>());
    }

    #[test]
    fn an_empty_batch_maps_to_nothing() {
        assert!(par_map_owned(Vec::<u8>::new(), |n| n).is_empty());
    }

    #[test]
    #[should_panic(expected = "item 500")]
    fn a_panic_in_a_worker_reaches_the_caller() {
        let items: Vec<usize> = (0..1_000).collect();
        par_map(&items, |n| assert_ne!(*n, 500, "item 500"));
    }
}
