//! A fixed-capacity ring of the last `n` values: allocated once, never per update.

#[derive(Debug, Clone)]
pub struct Window {
    values: Box<[f64]>,
    next: usize,
    len: usize,
}

impl Window {
    /// A window of `capacity` values (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            values: vec![0.0; capacity.max(1)].into_boxed_slice(),
            next: 0,
            len: 0,
        }
    }

    /// Pushes `value`; returns the value it displaced once the window is full.
    #[inline]
    pub fn push(&mut self, value: f64) -> Option<f64> {
        let slot = &mut self.values[self.next];
        let old = std::mem::replace(slot, value);
        self.next += 1;
        if self.next == self.values.len() {
            self.next = 0;
        }
        if self.len == self.values.len() {
            Some(old)
        } else {
            self.len += 1;
            None
        }
    }

    /// The oldest value held, once the window is full.
    #[inline]
    pub fn oldest(&self) -> Option<f64> {
        self.is_full().then(|| self.values[self.next])
    }

    /// The value pushed `n` pushes ago (0: the latest), if the window holds it.
    #[inline]
    pub fn ago(&self, n: usize) -> Option<f64> {
        (n < self.len).then(|| {
            let cap = self.values.len();
            self.values[(self.next + cap - 1 - n) % cap]
        })
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == self.values.len()
    }

    /// The values held, in no particular order (enough for sums, extremes and deviations).
    #[inline]
    pub fn values(&self) -> &[f64] {
        &self.values[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displaces_the_oldest_once_full() {
        let mut w = Window::new(3);
        assert_eq!(w.push(1.0), None);
        assert_eq!(w.push(2.0), None);
        assert!(!w.is_full());
        assert_eq!(w.push(3.0), None);
        assert!(w.is_full());
        assert_eq!(w.oldest(), Some(1.0));
        assert_eq!(w.push(4.0), Some(1.0));
        assert_eq!(w.oldest(), Some(2.0));
        assert_eq!(w.push(5.0), Some(2.0));
        let mut held = w.values().to_vec();
        held.sort_by(f64::total_cmp);
        assert_eq!(held, vec![3.0, 4.0, 5.0]);
    }
}
