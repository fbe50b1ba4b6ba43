//! Unit and property tests of the planner core, against synthetic dot lists.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::geometry::SpatialGrid;

/// Natural-looking existing dots: a Poisson process whose density falls from `left` to `right`
/// (dots/cm²) across the frame.
fn gradient_dots(w: f64, h: f64, left: f64, right: f64, seed: u64) -> Vec<ExistingDot> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let peak = left.max(right) / 100.0;
    let n = (peak * w * h) as usize;
    (0..n)
        .filter_map(|_| {
            let x = rng.gen_range(0.0..w);
            let y = rng.gen_range(0.0..h);
            let d = (left + (right - left) * x / w) / 100.0;
            (rng.gen::<f64>() * peak < d).then_some(ExistingDot {
                x_mm: x,
                y_mm: y,
                radius_mm: 0.12,
                kind: ExistingKind::Follicle,
                shade: Some(0.8),
            })
        })
        .collect()
}

fn input(w: f64, h: f64, existing: Vec<ExistingDot>) -> PlanInput {
    PlanInput {
        frame_mm: [w, h],
        existing,
        design: None,
        guard: None,
        skin: None,
        kept: Vec::new(),
    }
}

fn min_gap(planner: &Planner) -> f64 {
    let dots: Vec<(f64, f64, bool)> = planner.all_dots().collect();
    let mut g = SpatialGrid::new(100.0, 100.0, 1.0);
    for (i, d) in dots.iter().enumerate() {
        g.insert(i as u32, d.0, d.1);
    }
    let mut best = f64::INFINITY;
    for (i, d) in dots.iter().enumerate() {
        if !d.2 {
            continue;
        }
        g.for_each_within(d.0, d.1, 2.0, |j, dist| {
            if j as usize != i {
                best = best.min(dist);
            }
        });
    }
    best
}

/// Density over 5x5 mm squares that started below target: (median relative error, count).
fn cell_errors(planner: &Planner, existing: &[ExistingDot], w: f64, h: f64, target: f64) -> f64 {
    let (cw, ch) = ((w / 5.0) as usize, (h / 5.0) as usize);
    let mut before = vec![0usize; cw * ch];
    let mut after = vec![0usize; cw * ch];
    let idx = |x: f64, y: f64| -> Option<usize> {
        let (c, r) = ((x / 5.0) as usize, (y / 5.0) as usize);
        (x >= 0.0 && y >= 0.0 && c < cw && r < ch).then_some(r * cw + c)
    };
    for d in existing {
        if let Some(i) = idx(d.x_mm, d.y_mm) {
            before[i] += 1;
            after[i] += 1;
        }
    }
    for r in planner.plan().recommendations {
        if let Some(i) = idx(r.x_mm, r.y_mm) {
            after[i] += 1;
        }
    }
    let want = target / 100.0 * 25.0;
    let mut errs: Vec<f64> = (0..cw * ch)
        .filter(|&i| (before[i] as f64) < want)
        .map(|i| (after[i] as f64 - want).abs() / want)
        .collect();
    shade::median(&mut errs).unwrap_or(0.0)
}

fn nn_cv(points: &[[f64; 2]]) -> f64 {
    let mut g = SpatialGrid::new(100.0, 100.0, 1.0);
    for (i, p) in points.iter().enumerate() {
        g.insert(i as u32, p[0], p[1]);
    }
    let nn: Vec<f64> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let mut best = f64::INFINITY;
            g.for_each_within(p[0], p[1], 3.0, |j, d| {
                if j as usize != i {
                    best = best.min(d);
                }
            });
            best.is_finite().then_some(best)
        })
        .collect();
    let mean = nn.iter().sum::<f64>() / nn.len() as f64;
    let var = nn.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / nn.len() as f64;
    var.sqrt() / mean
}

#[test]
fn bare_skin_reaches_target_with_irregular_spacing() -> Result<(), PlanError> {
    let (w, h) = (40.0, 30.0);
    let planner = Planner::new(PlannerConfig::new(70.0, 0.7), input(w, h, Vec::new()))?;
    let plan = planner.plan();
    assert!(min_gap(&planner) >= 0.7);
    let err = cell_errors(&planner, &[], w, h, 70.0);
    assert!(err <= 0.06, "median density error {err}");
    assert!(
        (plan.density_after_per_cm2 - 70.0).abs() < 5.0,
        "{}",
        plan.density_after_per_cm2
    );
    let pts: Vec<[f64; 2]> = plan
        .recommendations
        .iter()
        .map(|r| [r.x_mm, r.y_mm])
        .collect();
    let cv = nn_cv(&pts);
    assert!(cv >= 0.08, "nearest-neighbour CV {cv}");
    // Orders are 1..=n along the path.
    for (k, r) in plan.recommendations.iter().enumerate() {
        assert_eq!(r.order as usize, k + 1);
    }
    Ok(())
}

#[test]
fn thinning_gradient_is_filled_only_where_short() -> Result<(), PlanError> {
    let (w, h) = (50.0, 30.0);
    let existing = gradient_dots(w, h, 20.0, 110.0, 7);
    let planner = Planner::new(PlannerConfig::new(70.0, 0.7), input(w, h, existing.clone()))?;
    assert!(min_gap(&planner) >= 0.7);
    let err = cell_errors(&planner, &existing, w, h, 70.0);
    assert!(err <= 0.12, "median density error {err}");
    // The dense right edge (about 100/cm²) gets (almost) nothing.
    let plan = planner.plan();
    let right = plan
        .recommendations
        .iter()
        .filter(|r| r.x_mm > 45.0)
        .count();
    let left = plan.recommendations.iter().filter(|r| r.x_mm < 5.0).count();
    assert!(right * 10 < left, "right {right} vs left {left}");
    Ok(())
}

#[test]
fn suspected_dots_count_half_toward_density_and_keep_full_spacing() -> Result<(), PlanError> {
    let (w, h) = (20.0, 20.0);
    let follicles = gradient_dots(w, h, 30.0, 30.0, 3);
    let suspected: Vec<ExistingDot> = follicles
        .iter()
        .map(|d| ExistingDot {
            kind: ExistingKind::Suspected,
            shade: None,
            ..*d
        })
        .collect();
    let config = PlannerConfig::new(70.0, 0.7);
    let as_follicles = Planner::new(config.clone(), input(w, h, follicles.clone()))?;
    let as_suspects = Planner::new(config, input(w, h, suspected))?;
    assert!(min_gap(&as_suspects) >= 0.7, "spacing kept from suspects");
    let (a, b) = (
        as_follicles.plan().recommendations.len() as f64,
        as_suspects.plan().recommendations.len() as f64,
    );
    // Half of each suspect is still wanted: about half as many more recommendations as there are
    // suspects.
    let n = follicles.len() as f64;
    let extra = (b - a) / n;
    assert!(
        (SUSPECT_WEIGHT - 0.15..=SUSPECT_WEIGHT + 0.15).contains(&extra),
        "{a} recommendations beside follicles, {b} beside as many suspects ({n})"
    );
    Ok(())
}

#[test]
fn sessions_layer_the_density() -> Result<(), PlanError> {
    let (w, h) = (30.0, 20.0);
    let plan_for = |session| -> Result<Plan, PlanError> {
        let cfg = PlannerConfig {
            session,
            ..PlannerConfig::new(70.0, 0.7)
        };
        Ok(Planner::new(cfg, input(w, h, Vec::new()))?.plan())
    };
    let s1 = plan_for(Some(1))?;
    let full = plan_for(None)?;
    let ratio = s1.density_after_per_cm2 / full.density_after_per_cm2;
    assert!((0.4..0.6).contains(&ratio), "session 1 ratio {ratio}");
    let shade1 = s1.recommendations[0].shade;
    assert!(shade1 < full.recommendations[0].shade);
    // Session 2 on top of session 1's dots (now pigment) reaches ~85%.
    let as_pigment: Vec<ExistingDot> = s1
        .recommendations
        .iter()
        .map(|r| ExistingDot {
            x_mm: r.x_mm,
            y_mm: r.y_mm,
            radius_mm: r.radius_mm,
            kind: ExistingKind::Pigment,
            shade: Some(r.shade),
        })
        .collect();
    let cfg = PlannerConfig {
        session: Some(2),
        ..PlannerConfig::new(70.0, 0.7)
    };
    let s2 = Planner::new(cfg, input(w, h, as_pigment))?.plan();
    let share = s2.density_after_per_cm2 / full.density_after_per_cm2;
    assert!((0.78..0.92).contains(&share), "session 2 share {share}");
    Ok(())
}

#[test]
fn incremental_updates_keep_valid_recommendations() -> Result<(), PlanError> {
    let (w, h) = (30.0, 20.0);
    let mut planner = Planner::new(PlannerConfig::new(70.0, 0.7), input(w, h, Vec::new()))?;
    let before = planner.plan();
    // The artist tattoos the first recommendation, 0.05 mm off.
    let first = before.recommendations[0].clone();
    let up = planner.add_existing(ExistingDot {
        x_mm: first.x_mm + 0.05,
        y_mm: first.y_mm,
        radius_mm: 0.15,
        kind: ExistingKind::Pigment,
        shade: None,
    });
    assert_eq!(up.done, Some(first.id));
    // A dot appears between recommendations: crowded ones go, everything else stays put.
    let a = &before.recommendations[10];
    let up = planner.add_existing(ExistingDot {
        x_mm: a.x_mm + 0.4,
        y_mm: a.y_mm,
        radius_mm: 0.12,
        kind: ExistingKind::Follicle,
        shade: None,
    });
    assert!(up.done.is_none());
    assert!(up.removed.contains(&a.id));
    assert!(min_gap(&planner) >= 0.7 - 1e-9);
    let after = planner.plan();
    let kept = before
        .recommendations
        .iter()
        .filter(|r| {
            after
                .recommendations
                .iter()
                .any(|q| q.id == r.id && q.x_mm == r.x_mm && q.y_mm == r.y_mm)
        })
        .count();
    assert!(kept + up.removed.len() + 1 >= before.recommendations.len());
    Ok(())
}

#[test]
fn hairline_design_ramps_and_sends_sentinels() -> Result<(), PlanError> {
    let design = Design::from_toml(
        r#"
[[zones]]
name = "hairline"
kind = "hairline"
polygon = [[0, 8], [60, 8], [60, 30], [0, 30]]
front_edge = [[0, 8], [60, 8]]
transition_mm = 8.0
"#,
    )?;
    let inp = PlanInput {
        design: Some(design),
        ..input(60.0, 30.0, Vec::new())
    };
    let plan = Planner::new(PlannerConfig::new(70.0, 0.7), inp)?.plan();
    let band = |y0: f64, y1: f64| {
        plan.recommendations
            .iter()
            .filter(|r| r.role == RecRole::Fill && r.y_mm >= y0 && r.y_mm < y1)
            .count() as f64
            / (60.0 * (y1 - y0))
            * 100.0
    };
    let front = band(8.0, 11.0);
    let back = band(20.0, 30.0);
    assert!(front < 0.6 * back, "front {front} back {back}");
    assert!((back - 70.0).abs() < 8.0, "back {back}");
    let sentinels: Vec<_> = plan
        .recommendations
        .iter()
        .filter(|r| r.role == RecRole::Sentinel)
        .collect();
    assert!(sentinels.len() >= 4, "{} sentinels", sentinels.len());
    assert!(sentinels.iter().all(|r| (4.9..=7.1).contains(&r.y_mm)));
    assert!(plan
        .recommendations
        .iter()
        .all(|r| r.role == RecRole::Sentinel || r.y_mm >= 8.0));
    Ok(())
}

#[test]
fn nogo_zones_stay_empty() -> Result<(), PlanError> {
    let design = Design::from_toml(
        r#"
[[zones]]
name = "fill"
kind = "fill"
polygon = [[0, 0], [30, 0], [30, 20], [0, 20]]
[[zones]]
name = "mole"
kind = "nogo"
polygon = [[10, 5], [15, 5], [15, 10], [10, 10]]
"#,
    )?;
    let inp = PlanInput {
        design: Some(design),
        ..input(30.0, 20.0, Vec::new())
    };
    let plan = Planner::new(PlannerConfig::new(70.0, 0.7), inp)?.plan();
    assert!(plan.recommendations.len() > 300);
    assert!(!plan
        .recommendations
        .iter()
        .any(|r| (10.0..15.0).contains(&r.x_mm) && (5.0..10.0).contains(&r.y_mm)));
    assert!(
        (plan.skin_area_mm2 - 575.0).abs() < 10.0,
        "{}",
        plan.skin_area_mm2
    );
    Ok(())
}

#[test]
fn kept_recommendations_stay_unless_the_new_input_rules_them_out() -> Result<(), PlanError> {
    // A plan over the left half of a strip, then a plan over the whole strip that keeps the
    // first plan's pending recommendations: each stays where it was with its look, except one
    // where a dot appeared since (now within the spacing); the new ones fill around them at the
    // spacing, the right half gets its share, and the working order resumes where it was.
    let existing = gradient_dots(40.0, 10.0, 40.0, 40.0, 3);
    let left: Vec<ExistingDot> = existing.iter().filter(|d| d.x_mm < 20.0).copied().collect();
    let config = PlannerConfig::new(70.0, 0.7);
    let first = Planner::new(config.clone(), input(20.0, 10.0, left))?.plan();
    let mut kept = first.recommendations.clone();
    let blocked = kept[3].clone();
    let mut existing = existing;
    existing.push(ExistingDot {
        x_mm: blocked.x_mm + 0.2,
        y_mm: blocked.y_mm,
        radius_mm: 0.15,
        kind: ExistingKind::Pigment,
        shade: None,
    });
    // An earlier plan's ids and order mean nothing here.
    for r in &mut kept {
        r.id += 1000;
    }
    let grown = Planner::new(
        config,
        PlanInput {
            kept: kept.clone(),
            ..input(40.0, 10.0, existing)
        },
    )?;
    let plan = grown.plan();
    let at = |r: &Recommendation| {
        plan.recommendations.iter().find(|n| {
            n.x_mm == r.x_mm && n.y_mm == r.y_mm && n.radius_mm == r.radius_mm && n.shade == r.shade
        })
    };
    for (i, r) in kept.iter().enumerate() {
        if i == 3 {
            assert!(at(r).is_none(), "kept next to the new dot");
        } else {
            assert!(
                at(r).is_some(),
                "recommendation {i} at ({}, {}) lost",
                r.x_mm,
                r.y_mm
            );
        }
    }
    assert_eq!(
        plan.recommendations[0].x_mm, kept[0].x_mm,
        "the order resumes elsewhere"
    );
    let right = plan
        .recommendations
        .iter()
        .filter(|r| r.x_mm > 20.5)
        .count();
    assert!(
        right * 10 >= (kept.len() - 1) * 8,
        "{right} recommendations on the new half against {} kept",
        kept.len() - 1
    );
    assert!(min_gap(&grown) >= 0.7 - 1e-9, "gap {}", min_gap(&grown));
    Ok(())
}

#[test]
fn rejects_nonsense_settings() {
    let bad = PlannerConfig::new(f64::NAN, 0.7);
    assert!(matches!(
        Planner::new(bad, input(10.0, 10.0, Vec::new())),
        Err(PlanError::InvalidConfig { .. })
    ));
    let bad = PlannerConfig::new(70.0, 0.0);
    assert!(Planner::new(bad, input(10.0, 10.0, Vec::new())).is_err());
    assert!(Planner::new(PlannerConfig::new(70.0, 0.7), input(0.0, 10.0, Vec::new())).is_err());
}

mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn dots() -> impl Strategy<Value = Vec<(f64, f64)>> {
        prop::collection::vec((-2.0f64..22.0, -2.0f64..17.0), 0..250)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn spacing_frame_and_determinism(
            pts in dots(),
            target in 10.0f64..140.0,
            spacing in 0.3f64..1.5,
            session in prop::option::of(1u8..=4),
            seed in any::<u64>(),
        ) {
            let existing: Vec<ExistingDot> = pts.iter().map(|&(x, y)| ExistingDot {
                x_mm: x, y_mm: y, radius_mm: 0.1, kind: ExistingKind::Follicle, shade: None,
            }).collect();
            let cfg = PlannerConfig { target_density_per_cm2: target, min_spacing_mm: spacing, session, seed };
            let a = Planner::new(cfg.clone(), input(20.0, 15.0, existing.clone()))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let b = Planner::new(cfg, input(20.0, 15.0, existing.clone()))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (pa, pb) = (a.plan(), b.plan());
            prop_assert_eq!(&pa, &pb);
            for r in &pa.recommendations {
                prop_assert!(r.x_mm >= 0.0 && r.x_mm < 20.0 && r.y_mm >= 0.0 && r.y_mm < 15.0);
                prop_assert_eq!(r.zone.as_str(), "fill");
                for e in &existing {
                    prop_assert!((r.x_mm - e.x_mm).hypot(r.y_mm - e.y_mm) >= spacing);
                }
            }
            prop_assert!(min_gap(&a) >= spacing);
        }

        #[test]
        fn recommendations_stay_in_their_zone_and_off_nogo(
            x0 in 0.0f64..6.0, y0 in 0.0f64..5.0, w in 6.0f64..14.0, h in 5.0f64..10.0,
            tilt in -2.0f64..2.0,
            mole in (2.0f64..16.0, 2.0f64..12.0),
            hairline in any::<bool>(),
            seed in any::<u64>(),
        ) {
            let poly = vec![[x0, y0 + tilt.max(0.0)], [x0 + w, y0 + (-tilt).max(0.0)], [x0 + w, y0 + h], [x0, y0 + h]];
            let main = Zone {
                name: "zone".into(),
                kind: if hairline { ZoneKind::Hairline } else { ZoneKind::Fill },
                polygon: poly.clone(),
                target_density_per_cm2: None,
                front_edge: hairline.then(|| vec![poly[0], poly[1]]),
                transition_mm: Some(4.0),
            };
            let (mx, my) = mole;
            let nogo = Zone {
                name: "mole".into(),
                kind: ZoneKind::Nogo,
                polygon: vec![[mx, my], [mx + 2.0, my], [mx + 2.0, my + 2.0], [mx, my + 2.0]],
                target_density_per_cm2: None,
                front_edge: None,
                transition_mm: None,
            };
            let design = Design { units: Units::Mm, zones: vec![main, nogo], ..Design::default() };
            let cfg = PlannerConfig { seed, ..PlannerConfig::new(70.0, 0.7) };
            let inp = PlanInput { design: Some(design), ..input(20.0, 15.0, Vec::new()) };
            let plan = Planner::new(cfg, inp).map_err(|e| TestCaseError::fail(e.to_string()))?.plan();
            for r in &plan.recommendations {
                prop_assert!(r.x_mm >= 0.0 && r.x_mm < 20.0 && r.y_mm >= 0.0 && r.y_mm < 15.0);
                let in_mole = (mx..mx + 2.0).contains(&r.x_mm) && (my..my + 2.0).contains(&r.y_mm);
                prop_assert!(!in_mole, "recommendation in the no-go zone at ({}, {})", r.x_mm, r.y_mm);
                let inside = crate::geometry::polygon_contains(&poly, r.x_mm, r.y_mm);
                match r.role {
                    RecRole::Fill => {
                        prop_assert!(inside, "fill outside its zone at ({}, {})", r.x_mm, r.y_mm);
                        prop_assert_eq!(r.zone.as_str(), "zone");
                    }
                    RecRole::Sentinel => prop_assert!(!inside && hairline),
                }
            }
        }

        #[test]
        fn incremental_never_breaks_spacing(
            pts in dots(),
            added in prop::collection::vec((0.0f64..20.0, 0.0f64..15.0), 1..40),
        ) {
            let existing: Vec<ExistingDot> = pts.iter().map(|&(x, y)| ExistingDot {
                x_mm: x, y_mm: y, radius_mm: 0.1, kind: ExistingKind::Follicle, shade: None,
            }).collect();
            let mut p = Planner::new(PlannerConfig::new(70.0, 0.7), input(20.0, 15.0, existing))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (x, y) in added {
                p.add_existing(ExistingDot {
                    x_mm: x, y_mm: y, radius_mm: 0.1, kind: ExistingKind::Pigment, shade: None,
                });
            }
            // Pending recommendations keep the spacing to everything.
            let dots: Vec<(f64, f64, bool)> = p.all_dots().collect();
            for r in p.plan().recommendations {
                for d in &dots {
                    let dist = (r.x_mm - d.0).hypot(r.y_mm - d.1);
                    prop_assert!(dist == 0.0 || dist >= 0.7, "gap {}", dist);
                }
            }
        }
    }
}
