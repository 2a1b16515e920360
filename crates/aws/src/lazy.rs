//! An SDK client built when it is first used. Building one costs about 0.4 ms (its endpoint
//! rules and partitions); a function's init builds none it does not call first, and an
//! invocation builds only those it calls (docs/performance.md, init).

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

type Make<C> = Box<dyn Fn() -> C + Send + Sync>;

pub struct Lazy<C>(Arc<(OnceLock<C>, Option<Make<C>>)>);

impl<C> Lazy<C> {
    /// A client `make` builds on first use.
    pub fn new(make: impl Fn() -> C + Send + Sync + 'static) -> Self {
        Lazy(Arc::new((OnceLock::new(), Some(Box::new(make)))))
    }
}

impl<C> From<C> for Lazy<C> {
    /// A client built already.
    fn from(client: C) -> Self {
        Lazy(Arc::new((OnceLock::from(client), None)))
    }
}

impl<C> Clone for Lazy<C> {
    fn clone(&self) -> Self {
        Lazy(self.0.clone())
    }
}

impl<C> Deref for Lazy<C> {
    type Target = C;
    fn deref(&self) -> &C {
        let (cell, make) = &*self.0;
        // A `Lazy` holds either a client or a way to make one (see the constructors).
        cell.get_or_init(|| make.as_ref().expect("a Lazy without a client has a maker")())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn builds_once_on_first_use_and_clones_share_it() {
        let built = Arc::new(AtomicUsize::new(0));
        let counter = built.clone();
        let lazy = Lazy::new(move || counter.fetch_add(1, Ordering::SeqCst) + 10);
        let twin = lazy.clone();
        assert_eq!(
            built.load(Ordering::SeqCst),
            0,
            "nothing built before the first use"
        );
        assert_eq!(*twin, 10);
        assert_eq!(*lazy, 10);
        assert_eq!(built.load(Ordering::SeqCst), 1);
        assert_eq!(*Lazy::from(7), 7);
    }
}
