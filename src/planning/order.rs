//! The order the artist works in: a short path for the hand, region by region.
//!
//! The frame is cut into square regions of [`REGION_MM`] visited in boustrophedon order (left to
//! right on the first row, right to left on the next), so the hand sweeps the scalp without
//! jumping back. Inside a region the dots are toured nearest-neighbour first from where the
//! previous region ended, then polished with 2-opt (regions hold ~20 dots, so 2-opt is cheap).
//! This is the classic construction + improvement heuristic for the travelling salesman path
//! (Rosenkrantz et al. 1977; Croes 1958).

/// Side of one working region (mm): about what an artist treats before moving the hand.
pub const REGION_MM: f64 = 5.0;
/// 2-opt sweeps per region at most.
const TWO_OPT_SWEEPS: usize = 4;

/// Orders points (mm) into a working path; returns indices into `points` in visiting order.
pub fn working_order(points: &[[f64; 2]]) -> Vec<usize> {
    if points.is_empty() {
        return Vec::new();
    }
    let key = |p: &[f64; 2]| -> (i64, i64) {
        let row = (p[1] / REGION_MM).floor() as i64;
        let col = (p[0] / REGION_MM).floor() as i64;
        (row, if row % 2 == 0 { col } else { -col })
    };
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by_key(|&i| key(&points[i]));
    let mut out = Vec::with_capacity(points.len());
    let mut cursor: Option<[f64; 2]> = None;
    let mut start = 0;
    while start < idx.len() {
        let k = key(&points[idx[start]]);
        let mut end = start;
        while end < idx.len() && key(&points[idx[end]]) == k {
            end += 1;
        }
        let region = &idx[start..end];
        let mut tour = nearest_neighbour_tour(points, region, cursor);
        two_opt(points, &mut tour, cursor);
        if let Some(&last) = tour.last() {
            cursor = Some(points[last]);
        }
        out.extend(tour);
        start = end;
    }
    out
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

fn nearest_neighbour_tour(
    points: &[[f64; 2]],
    region: &[usize],
    from: Option<[f64; 2]>,
) -> Vec<usize> {
    let mut left: Vec<usize> = region.to_vec();
    let mut tour = Vec::with_capacity(left.len());
    let mut here = from.unwrap_or(points[left[0]]);
    while !left.is_empty() {
        let (k, _) = left
            .iter()
            .enumerate()
            .map(|(k, &i)| (k, dist(here, points[i])))
            .fold((0, f64::INFINITY), |b, c| if c.1 < b.1 { c } else { b });
        let i = left.swap_remove(k);
        here = points[i];
        tour.push(i);
    }
    tour
}

/// 2-opt on an open path that starts from `from` (fixed) and has a free end.
fn two_opt(points: &[[f64; 2]], tour: &mut [usize], from: Option<[f64; 2]>) {
    let n = tour.len();
    if n < 3 {
        return;
    }
    let at = |tour: &[usize], i: isize| -> Option<[f64; 2]> {
        if i < 0 {
            from
        } else {
            tour.get(i as usize).map(|&k| points[k])
        }
    };
    for _ in 0..TWO_OPT_SWEEPS {
        let mut improved = false;
        for i in 0..n - 1 {
            for j in i + 1..n {
                // Reverse tour[i..=j]: edges (i-1,i) and (j,j+1) become (i-1,j) and (i,j+1).
                let a = at(tour, i as isize - 1);
                let (b, c) = (points[tour[i]], points[tour[j]]);
                let d = at(tour, j as isize + 1);
                let before = a.map_or(0.0, |a| dist(a, b)) + d.map_or(0.0, |d| dist(c, d));
                let after = a.map_or(0.0, |a| dist(a, c)) + d.map_or(0.0, |d| dist(b, d));
                if after + 1e-9 < before {
                    tour[i..=j].reverse();
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// Length of a path through `points` in the given order (mm).
pub fn path_length(points: &[[f64; 2]], order: &[usize]) -> f64 {
    order
        .windows(2)
        .map(|w| dist(points[w[0]], points[w[1]]))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn path_visits_everything_once_and_beats_random_order() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let pts: Vec<[f64; 2]> = (0..600)
            .map(|_| [rng.gen_range(0.0..40.0), rng.gen_range(0.0..30.0)])
            .collect();
        let order = working_order(&pts);
        let mut seen = order.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..pts.len()).collect::<Vec<_>>());
        let tour = path_length(&pts, &order);
        let naive = path_length(&pts, &(0..pts.len()).collect::<Vec<_>>());
        // A good tour of n uniform points in area A is about 0.7 * sqrt(n * A).
        let bound = 1.2 * (pts.len() as f64 * 1200.0).sqrt();
        assert!(tour < bound, "tour {tour:.0} mm vs bound {bound:.0}");
        assert!(tour < naive / 5.0);
    }
}
