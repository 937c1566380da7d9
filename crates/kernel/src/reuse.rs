//! `Clone` for the kernel's state that reuses allocations on `clone_from`.
//!
//! A model checker restores a snapshot per explored transition
//! ([`Kernel::restore`](crate::Kernel::restore)). A derived `Clone` builds a
//! whole new value and drops the old one; [`clone_fields!`] writes
//! `clone_from` field by field instead, so the vectors, boxes and strings of
//! the state being overwritten keep their buffers when the shapes match.

/// Implements `Clone` for a struct: `clone` clones each field, `clone_from`
/// calls each field's `clone_from`. Every field must be listed (the
/// destructuring in `clone_from` has no `..`, so a new field is a compile
/// error until it is added here).
macro_rules! clone_fields {
    ($ty:ident $(<$g:ident>)? { $($f:ident),* $(,)? }) => {
        impl$(<$g: Clone>)? Clone for $ty$(<$g>)? {
            fn clone(&self) -> Self {
                $ty { $($f: self.$f.clone()),* }
            }
            fn clone_from(&mut self, source: &Self) {
                let $ty { $($f),* } = self;
                $( $f.clone_from(&source.$f); )*
            }
        }
    };
}
