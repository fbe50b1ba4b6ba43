//! The synthetic renderer through its public API: determinism, truth consistency, visibility of
//! every true dot, negatives, the dermoscope view and the simulated needle.

use std::collections::HashSet;

use stipple::source::synth::{render, NegativeKind, Pose, Scene, SceneParams, View};

fn small(seed: u64) -> SceneParams {
    SceneParams {
        seed,
        view: View::Rig,
        width: 480,
        height: 320,
        px_per_mm: None,
    }
}

fn tiny(seed: u64) -> SceneParams {
    SceneParams {
        width: 240,
        height: 160,
        ..small(seed)
    }
}

fn lum(img: &image::RgbImage, x: i64, y: i64) -> Option<f64> {
    if x < 0 || y < 0 || x >= img.width() as i64 || y >= img.height() as i64 {
        return None;
    }
    let p = img.get_pixel(x as u32, y as u32).0;
    Some(0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
}

#[test]
fn same_seed_same_bytes_and_seeds_differ() {
    let a = render(&small(11));
    let b = render(&small(11));
    let c = render(&small(12));
    assert_eq!(a.image.as_raw(), b.image.as_raw());
    assert_eq!(a.truth, b.truth);
    assert_ne!(a.image.as_raw(), c.image.as_raw());
}

#[test]
fn truth_lies_inside_the_image() {
    for seed in 0..3 {
        let f = render(&small(seed));
        let (w, h) = (f.truth.width as f64, f.truth.height as f64);
        assert!(!f.truth.units.is_empty());
        assert!((1..=6).contains(&f.truth.fitzpatrick));
        for u in &f.truth.units {
            assert!(u.x >= 0.0 && u.y >= 0.0 && u.x < w && u.y < h);
            assert!((1..=4).contains(&u.hairs.len()));
        }
        for p in &f.truth.pigment {
            assert!(p.x >= 0.0 && p.y >= 0.0 && p.x < w && p.y < h);
        }
    }
}

#[test]
fn every_unit_tip_stands_out_of_its_skin_ring() {
    for seed in 0u64..6 {
        let f = render(&small(seed));
        let img = &f.image;
        for u in &f.truth.units {
            // The darkest and the lightest 3x3 mean around any hair's tip.
            let means: Vec<f64> = u
                .hairs
                .iter()
                .flat_map(|h| {
                    let (cx, cy) = (h.x.floor() as i64, h.y.floor() as i64);
                    [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
                        .into_iter()
                        .filter_map(move |(ox, oy)| {
                            let vals: Vec<f64> = (-1..=1)
                                .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                                .filter_map(|(dx, dy)| lum(img, cx + ox + dx, cy + oy + dy))
                                .collect();
                            (vals.len() == 9).then(|| vals.iter().sum::<f64>() / 9.0)
                        })
                })
                .collect();
            if means.is_empty() {
                continue; // At the very edge.
            }
            let darkest = means.iter().copied().fold(f64::MAX, f64::min);
            let lightest = means.iter().copied().fold(f64::MIN, f64::max);
            let r = u.radius + 0.6 * f.truth.px_per_mm;
            let mut ring: Vec<f64> = (0..32)
                .filter_map(|k| {
                    let a = k as f64 / 32.0 * std::f64::consts::TAU;
                    lum(img, (u.x + r * a.cos()) as i64, (u.y + r * a.sin()) as i64)
                })
                .collect();
            if ring.len() < 16 {
                continue;
            }
            ring.sort_by(f64::total_cmp);
            let skin = ring[ring.len() / 2];
            // Hair is black to white: a tip differs from the skin, darker or (white hair on
            // darker skin) lighter; grey hair and low-contrast frames narrow the gap.
            let need = if u.miniaturised { 0.04 } else { 0.06 } * skin;
            let tip = if skin - darkest >= lightest - skin {
                darkest
            } else {
                lightest
            };
            assert!(
                (tip - skin).abs() > need,
                "seed {seed}: unit at ({:.1}, {:.1}) mini={} tip {tip:.1} vs skin {skin:.1}",
                u.x,
                u.y,
                u.miniaturised
            );
        }
    }
}

#[test]
fn every_negative_kind_appears_across_seeds() {
    let mut kinds = HashSet::new();
    for seed in 0..10 {
        for n in Scene::generate(&tiny(seed))
            .truth(&Pose::default())
            .negatives
        {
            kinds.insert(format!("{:?}", n.kind));
        }
    }
    for k in [
        NegativeKind::FueScar,
        NegativeKind::StripScar,
        NegativeKind::Mole,
        NegativeKind::Strand,
        NegativeKind::Glare,
    ] {
        assert!(
            kinds.contains(&format!("{k:?}")),
            "{k:?} never drawn: {kinds:?}"
        );
    }
}

#[test]
fn no_unit_or_pigment_under_a_negative() {
    for seed in 0..4 {
        let t = render(&small(seed)).truth;
        for n in t
            .negatives
            .iter()
            .filter(|n| n.kind != NegativeKind::Strand)
        {
            for u in &t.units {
                assert!(
                    n.shape.distance(u.x, u.y) > 0.0,
                    "seed {seed}: unit under {:?}",
                    n.kind
                );
            }
            for p in &t.pigment {
                assert!(
                    n.shape.distance(p.x, p.y) > 0.0,
                    "seed {seed}: pigment under {:?}",
                    n.kind
                );
            }
        }
    }
}

#[test]
fn dermoscope_frame_has_its_size_and_scale() {
    let p = SceneParams {
        seed: 2,
        view: View::Dermoscope,
        width: 640,
        height: 512,
        px_per_mm: None,
    };
    let f = render(&p);
    assert_eq!(f.image.dimensions(), (640, 512));
    assert_eq!(f.truth.px_per_mm, 300.0);
    assert_eq!(f.truth.view, View::Dermoscope);
    let full = SceneParams::new(2, View::Dermoscope);
    assert_eq!((full.width, full.height), (1280, 1024));
}

#[test]
fn pose_moves_the_truth_and_the_needle_adds_a_dot() {
    let mut scene = Scene::generate(&SceneParams {
        px_per_mm: Some(20.0),
        ..small(7)
    });
    let a = scene.render(&Pose::default(), 1);
    let moved = Pose {
        dx_mm: 1.0,
        ..Pose::default()
    };
    let b = scene.render(&moved, 1);
    // Shifting the view 1 mm right moves everything 20 px left.
    let ua = &a.truth.units[a.truth.units.len() / 2];
    assert!(b
        .truth
        .units
        .iter()
        .any(|u| (u.x - (ua.x - 20.0)).abs() < 1e-6 && (u.y - ua.y).abs() < 1e-6));
    let before = a.truth.pigment.len();
    scene.add_pigment(0.0, 0.0, 0.25, 0.9);
    let c = scene.render(&Pose::default(), 1);
    assert_eq!(c.truth.pigment.len(), before + 1);
    let centre = lum(&c.image, 240, 160).unwrap_or(255.0);
    let was = lum(&a.image, 240, 160).unwrap_or(0.0);
    // Healed ink under the epidermis: darker than the skin on every type, by less on dark skin.
    assert!(
        centre < was * 0.95,
        "needle dot not visible: {centre} vs {was}"
    );
}

#[test]
fn dermoscope_hairs_have_trichoscopy_sizes() {
    for seed in 20..23 {
        let p = SceneParams {
            seed,
            view: View::Dermoscope,
            width: 640,
            height: 512,
            px_per_mm: None,
        };
        let t = render(&p).truth;
        for u in t.units.iter().filter(|u| !u.miniaturised) {
            for h in &u.hairs {
                // 60-110 um thick shafts at 300 px/mm.
                assert!(
                    (8.9..=16.6).contains(&h.radius),
                    "shaft radius {} px",
                    h.radius
                );
                assert!(h.length_px >= 0.1 * 300.0 - 1e-6);
                // Each shaft leaves the skin at its unit's opening.
                assert!((h.x - u.x).hypot(h.y - u.y) <= u.radius);
            }
        }
    }
}
