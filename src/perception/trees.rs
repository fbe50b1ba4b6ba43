//! Evaluation of gradient-boosted decision-tree ensembles fitted offline (scikit-learn's
//! `HistGradientBoostingClassifier`, binary) and written out as Rust tables by the fitting
//! scripts in `models/train/`.

/// One node of a tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// Feature index tested, or [`LEAF`] for a leaf.
    pub feature: u8,
    /// Go left when the feature is at most this.
    pub threshold: f64,
    /// Index of the left child in the tree's node list.
    pub left: u16,
    /// Index of the right child.
    pub right: u16,
    /// A leaf's contribution to the log-odds.
    pub value: f64,
}

/// The `feature` of a leaf.
pub const LEAF: u8 = u8::MAX;

/// A binary classifier: log-odds = baseline + the sum of one leaf per tree.
#[derive(Debug, Clone, Copy)]
pub struct Ensemble {
    /// Starting log-odds.
    pub baseline: f64,
    /// The trees, each a node list with its root first.
    pub trees: &'static [&'static [Node]],
}

impl Ensemble {
    /// Log-odds of the positive class for features `x`.
    pub fn log_odds(&self, x: &[f64]) -> f64 {
        let mut sum = self.baseline;
        for tree in self.trees {
            let mut i = 0usize;
            while let Some(n) = tree.get(i) {
                if n.feature == LEAF {
                    sum += n.value;
                    break;
                }
                let v = x.get(usize::from(n.feature)).copied().unwrap_or(f64::NAN);
                // A missing (NaN) value goes right, as it never was at training time.
                i = usize::from(if v <= n.threshold { n.left } else { n.right });
            }
        }
        sum
    }

    /// Probability of the positive class for features `x`.
    pub fn probability(&self, x: &[f64]) -> f64 {
        1.0 / (1.0 + (-self.log_odds(x)).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUMP: &[Node] = &[
        Node {
            feature: 1,
            threshold: 0.5,
            left: 1,
            right: 2,
            value: 0.0,
        },
        Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
            value: -2.0,
        },
        Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
            value: 3.0,
        },
    ];

    #[test]
    fn sums_one_leaf_per_tree_onto_the_baseline() {
        let e = Ensemble {
            baseline: 0.5,
            trees: &[STUMP, STUMP],
        };
        assert_eq!(e.log_odds(&[9.0, 0.2]), 0.5 - 4.0);
        assert_eq!(e.log_odds(&[9.0, 0.7]), 0.5 + 6.0);
        assert!((e.probability(&[0.0, 0.7]) - 1.0 / (1.0 + (-6.5f64).exp())).abs() < 1e-12);
    }
}
