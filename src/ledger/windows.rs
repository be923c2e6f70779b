//! A bucket's windows, the first kept inline in the bucket.
//!
//! Most buckets have one window (a keyed account, an API key). Kept in the
//! bucket's own allocation, it is fetched with the bucket's other lines, not
//! after them through one more pointer.

use std::ops::Deref;

use super::window::Window;

/// The windows of a bucket, in configuration order: one inline, or several
/// on the heap.
#[derive(Debug)]
pub(super) enum Windows {
    One([Window; 1]),
    Many(Box<[Window]>),
}

impl From<Vec<Window>> for Windows {
    fn from(windows: Vec<Window>) -> Windows {
        match <[Window; 1]>::try_from(windows) {
            Ok(one) => Windows::One(one),
            Err(windows) => Windows::Many(windows.into_boxed_slice()),
        }
    }
}

impl Windows {
    /// Bytes these windows keep outside the bucket (their rings, and the
    /// windows themselves when they are not inline).
    pub(super) fn footprint(&self) -> usize {
        let inline = match self {
            Windows::One(_) => std::mem::size_of::<Window>(),
            Windows::Many(_) => 0,
        };
        self.iter().map(Window::footprint).sum::<usize>() - inline
    }
}

impl Deref for Windows {
    type Target = [Window];

    #[inline(always)]
    fn deref(&self) -> &[Window] {
        match self {
            Windows::One(w) => w,
            Windows::Many(w) => w,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{Quota, Storage};

    fn window(limit: u32) -> Window {
        Window::new(&Quota::per_second(limit), Storage::Exact, limit)
    }

    #[test]
    fn one_window_is_kept_inline_and_several_on_the_heap_in_order() {
        let one = Windows::from(vec![window(3)]);
        assert!(matches!(one, Windows::One(_)));
        assert_eq!(one.iter().map(Window::limit).collect::<Vec<_>>(), [3]);
        let three = Windows::from(vec![window(1), window(2), window(3)]);
        assert!(matches!(three, Windows::Many(_)));
        assert_eq!(
            three.iter().map(Window::limit).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(Windows::from(Vec::new()).is_empty());
        // The inline window is part of the bucket; its ring is not.
        let ring = |w: &Windows| w.iter().map(Window::footprint).sum::<usize>();
        assert_eq!(one.footprint(), ring(&one) - std::mem::size_of::<Window>());
        assert_eq!(three.footprint(), ring(&three));
    }
}
