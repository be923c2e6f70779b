//! Percentages as reports print them: two decimals, rounded half up, exactly.

/// `part / whole * 100` rounded half up to two decimals, in integers: in
/// floats, 87 of 160 came to 54.37 (54.375 * 100 is 5437.4999... as a
/// double), not 54.38. `None` when `whole` is zero (each report says what a
/// share of nothing is).
pub(crate) fn percent(part: u64, whole: u64) -> Option<f64> {
    if whole == 0 {
        return None;
    }
    let hundredths = (u128::from(part) * 20_000 + u128::from(whole)) / (2 * u128::from(whole));
    Some(hundredths as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn two_decimals_rounded_half_up_exactly() {
        assert_eq!(percent(87, 160), Some(54.38));
        assert_eq!(percent(1, 3), Some(33.33));
        assert_eq!(percent(2, 3), Some(66.67));
        assert_eq!(percent(1, 8), Some(12.5));
        assert_eq!(percent(0, 5), Some(0.0));
        assert_eq!(percent(7, 5), Some(140.0), "over the whole");
        assert_eq!(percent(u64::MAX, u64::MAX), Some(100.0));
        assert_eq!(percent(1, 0), None);
    }

    #[test]
    fn agrees_with_a_decimal_model_everywhere_it_is_asked() {
        // Every part of every whole up to 400: the model rounds the exact
        // decimal 10000 * part / whole half up.
        for whole in 1..=400u64 {
            for part in 0..=whole {
                let (q, r) = (part * 10_000 / whole, part * 10_000 % whole);
                let hundredths = q + u64::from(2 * r >= whole);
                assert_eq!(
                    percent(part, whole),
                    Some(hundredths as f64 / 100.0),
                    "{part}/{whole}"
                );
            }
        }
    }
}
