//! Touch-up comparison: two recordings of the same scalp, months apart
//! (`stipple replay OLD.mcap --compare NEW.mcap --report OUT.html`).
//!
//! Each recording's skin map is rebuilt ([`SkinMap`], with every dot's darkness measured on
//! sampled frames). The two maps live in different skin coordinates (each session starts its
//! own), so the new map is registered onto the old one: a vote over rotations and
//! translations finds the coarse alignment (every pair of dots votes for the offset between
//! them; the dot pattern is irregular, so only the true alignment gathers many votes), then a
//! few rounds of nearest neighbours and a least-squares similarity fit refine it
//! ([`Similarity::fit`], Umeyama 1991). Pigment dots are then matched one to one (mutual
//! nearest within [`MATCH_MM`]) and each pair compared: **faded** when its darkness dropped by
//! [`FADE_MIN`] or more, **spread** when its radius grew by [`SPREAD_MIN_MM`] or more.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::Engine as _;
use image::{Rgb, RgbImage};
use serde::Serialize;

use super::reader::Recording;
use super::report::{self, png, MapDot, SkinMap};
use crate::calib::PlaneMap;
use crate::frame::DotKind;
use crate::registration::Similarity;

/// Pigment dots closer than this after registration are the same dot, millimetres.
pub const MATCH_MM: f64 = 0.3;
/// A dot whose darkness dropped by this share or more has faded.
pub const FADE_MIN: f64 = 0.15;
/// A dot whose radius grew by this much or more has spread, millimetres.
pub const SPREAD_MIN_MM: f64 = 0.05;
/// The before/after crops' ring lies this far outside the dot's larger radius, millimetres.
pub const RING_MARGIN_MM: f64 = 0.15;
/// Darkness is measured on every n-th frame.
const DARKNESS_EVERY: usize = 5;
/// Rotations searched in the coarse alignment, degrees either way.
const MAX_ANGLE_DEG: i32 = 10;
/// Translation vote bin, millimetres.
const VOTE_BIN_MM: f64 = 0.25;

/// One matched pigment dot, old and new.
#[derive(Debug, Clone, Serialize)]
pub struct DotChange {
    /// Where, in the old recording's skin millimetres.
    pub in_old_skin_mm: [f64; 2],
    /// Radius then and now, millimetres.
    pub radius_mm: [f64; 2],
    /// Darkness then and now (0 invisible, 1 black).
    pub darkness: [f64; 2],
    /// Relative darkness change (`-0.3` = 30 % lighter).
    pub darkness_change: f64,
    /// Radius change, millimetres (positive = spread).
    pub radius_change_mm: f64,
    /// The skin around the dot in the earlier recording's last frame that shows it, PNG (see
    /// [`report::skin_crop`]); empty when none does or past [`report::MAX_CROPS`]. Only faded
    /// and spread dots get one.
    #[serde(skip)]
    pub before_png: Vec<u8>,
    /// The same skin in the later recording's last frame that shows it.
    #[serde(skip)]
    pub after_png: Vec<u8>,
}

/// The comparison of two recordings.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The earlier recording.
    pub old_file: String,
    /// The later recording.
    pub new_file: String,
    /// When the earlier session was recorded (`YYYY-MM-DD`, from its metadata).
    pub old_date: String,
    /// When the later session was recorded.
    pub new_date: String,
    /// `old_skin_from_new_skin`, the registration between the two maps.
    pub old_from_new: Similarity,
    /// Dots (all kinds) that support the registration.
    pub registration_inliers: usize,
    /// RMS residual of the registration, millimetres.
    pub registration_rms_mm: f64,
    /// Pigment dots in the old map, in the area both recordings saw.
    pub old_pigment_dots: usize,
    /// Pigment dots in the new map, in the area both recordings saw.
    pub new_pigment_dots: usize,
    /// Pigment dots found in both.
    pub matched: usize,
    /// Matched dots that faded, most faded first.
    pub faded: Vec<DotChange>,
    /// Matched dots that spread, most spread first.
    pub spread: Vec<DotChange>,
    /// Median relative darkness change of matched dots.
    pub median_darkness_change: Option<f64>,
    /// Median radius change of matched dots, millimetres.
    pub median_radius_change_mm: Option<f64>,
    /// Old pigment dots not found again (faded beyond detection, or hidden).
    pub not_found: Vec<[f64; 2]>,
    /// Every matched pair (for the JSON report).
    pub changes: Vec<DotChange>,
    /// Picture of the old map with faded and spread dots marked, PNG.
    #[serde(skip)]
    pub picture_png: Vec<u8>,
}

/// Compares two recordings of the same scalp.
///
/// # Errors
/// The two maps cannot be registered (not the same scalp, or too few dots in common).
pub fn compare(old: &Recording, new: &Recording) -> anyhow::Result<Comparison> {
    let a = SkinMap::from_recording(old, Some(DARKNESS_EVERY));
    let b = SkinMap::from_recording(new, Some(DARKNESS_EVERY));
    let mut c = compare_maps(&a, &b)
        .map_err(|e| anyhow::anyhow!("{} vs {}: {e}", old.path.display(), new.path.display()))?;
    c.old_file = old.path.display().to_string();
    c.new_file = new.path.display().to_string();
    let date = |r: &Recording| r.session_field("date").unwrap_or_else(|| r.info.date());
    c.old_date = date(old);
    c.new_date = date(new);
    attach_crops(old, new, &mut c);
    Ok(c)
}

/// A crop to cut from one decoded frame: the list (0 faded, 1 spread), the index in it, and
/// the point in that recording's skin millimetres.
type CropJob = (usize, usize, [f64; 2]);

/// Gives each faded and spread dot (most changed first, at most [`report::MAX_CROPS`] in all)
/// its before and after crops: the last frame of each recording that shows the skin around it,
/// with a ring [`RING_MARGIN_MM`] outside the larger of its two radii. Each frame is decoded
/// once.
fn attach_crops(old: &Recording, new: &Recording, c: &mut Comparison) {
    let _span = tracing::debug_span!("compare_crops").entered();
    let new_from_old = c.old_from_new.inverse();
    let mut wanted: Vec<(usize, usize, [f64; 2])> = Vec::new();
    for (list, n) in [(0, c.faded.len()), (1, c.spread.len())] {
        wanted.extend((0..n).map(|i| {
            let d = if list == 0 { &c.faded[i] } else { &c.spread[i] };
            (list, i, d.in_old_skin_mm)
        }));
    }
    wanted.truncate(report::MAX_CROPS);
    let lenses = [old.lens(), new.lens()];
    let last_showing = |rec: &Recording, lens: Option<&PlaneMap>, p: [f64; 2]| {
        rec.frames
            .iter()
            .rposition(|f| report::frame_shows(f, lens, p))
    };
    let mut jobs: HashMap<(bool, usize), Vec<CropJob>> = HashMap::new();
    for &(list, i, p_old) in &wanted {
        if let Some(k) = last_showing(old, lenses[0].as_ref(), p_old) {
            jobs.entry((false, k)).or_default().push((list, i, p_old));
        }
        let p_new = new_from_old.apply(p_old);
        if let Some(k) = last_showing(new, lenses[1].as_ref(), p_new) {
            jobs.entry((true, k)).or_default().push((list, i, p_new));
        }
    }
    for ((is_new, k), items) in jobs {
        let rec = if is_new { new } else { old };
        let lens = lenses[usize::from(is_new)].as_ref();
        let f = &rec.frames[k];
        let Ok(image) = super::decode_jpeg(f.seq, &f.jpeg) else {
            continue;
        };
        for (list, i, p) in items {
            let colour = if list == 0 {
                Rgb([255, 150, 0])
            } else {
                Rgb([220, 0, 0])
            };
            // A ring just outside the dot, then and now: its size is the change to see.
            let r = if list == 0 { &c.faded[i] } else { &c.spread[i] }.radius_mm;
            let ring_mm = r[0].max(r[1]) + RING_MARGIN_MM;
            let Some(crop) =
                report::skin_crop(f, lens, &image, p, ring_mm, colour).and_then(|c| png(&c))
            else {
                continue;
            };
            let d = if list == 0 {
                &mut c.faded[i]
            } else {
                &mut c.spread[i]
            };
            if is_new {
                d.after_png = crop;
            } else {
                d.before_png = crop;
            }
        }
    }
}

/// Compares two skin maps (the new one is registered onto the old one).
///
/// # Errors
/// A message when they cannot be registered.
pub fn compare_maps(a: &SkinMap, b: &SkinMap) -> Result<Comparison, String> {
    let _span = tracing::debug_span!("compare", old = a.dots.len(), new = b.dots.len()).entered();
    let pa: Vec<[f64; 2]> = a.dots.iter().map(|d| d.in_skin_mm).collect();
    let pb: Vec<[f64; 2]> = b.dots.iter().map(|d| d.in_skin_mm).collect();
    if pa.len() < 3 || pb.len() < 3 {
        return Err(format!(
            "too few dots to register ({} and {})",
            pa.len(),
            pb.len()
        ));
    }
    let coarse = coarse_alignment(&pa, &pb);
    let (t, inliers, rms) = refine(&pa, &pb, coarse);
    let min_inliers = (pa.len().min(pb.len()) / 5).max(3);
    if inliers < min_inliers {
        return Err(format!(
            "the dot patterns do not match ({inliers} dots agree, {min_inliers} needed): not the same area of scalp?"
        ));
    }
    // Pigment dots both recordings saw.
    let both_saw_a = |p: [f64; 2]| b.seen(t.inverse().apply(p));
    let old_pig: Vec<&MapDot> = a
        .dots
        .iter()
        .filter(|d| d.kind == DotKind::Pigment && both_saw_a(d.in_skin_mm))
        .collect();
    let new_pig: Vec<(MapDot, [f64; 2])> = b
        .dots
        .iter()
        .filter(|d| d.kind == DotKind::Pigment)
        .map(|d| (*d, t.apply(d.in_skin_mm)))
        .filter(|(_, p)| a.seen(*p))
        .collect();
    let nearest = |p: [f64; 2], set: &mut dyn Iterator<Item = (usize, [f64; 2])>| {
        set.map(|(i, q)| (i, (q[0] - p[0]).hypot(q[1] - p[1])))
            .min_by(|x, y| x.1.total_cmp(&y.1))
    };
    let scale = t.scale();
    let mut changes = Vec::new();
    let mut not_found = Vec::new();
    for (i, d) in old_pig.iter().enumerate() {
        let m = nearest(d.in_skin_mm, &mut new_pig.iter().map(|x| x.1).enumerate());
        let mutual = m.filter(|(j, dist)| {
            *dist <= MATCH_MM
                && nearest(
                    new_pig[*j].1,
                    &mut old_pig.iter().map(|x| x.in_skin_mm).enumerate(),
                )
                .is_some_and(|(k, _)| k == i)
        });
        let Some((j, _)) = mutual else {
            not_found.push(d.in_skin_mm);
            continue;
        };
        let n = &new_pig[j].0;
        let (Some(d0), Some(d1)) = (d.darkness, n.darkness) else {
            continue;
        };
        let r1 = n.radius_mm * scale;
        changes.push(DotChange {
            in_old_skin_mm: d.in_skin_mm,
            radius_mm: [d.radius_mm, r1],
            darkness: [d0, d1],
            darkness_change: if d0 > 0.0 { d1 / d0 - 1.0 } else { 0.0 },
            radius_change_mm: r1 - d.radius_mm,
            before_png: Vec::new(),
            after_png: Vec::new(),
        });
    }
    let mut faded: Vec<DotChange> = changes
        .iter()
        .filter(|c| c.darkness_change <= -FADE_MIN)
        .cloned()
        .collect();
    faded.sort_by(|x, y| x.darkness_change.total_cmp(&y.darkness_change));
    let mut spread: Vec<DotChange> = changes
        .iter()
        .filter(|c| c.radius_change_mm >= SPREAD_MIN_MM)
        .cloned()
        .collect();
    spread.sort_by(|x, y| y.radius_change_mm.total_cmp(&x.radius_change_mm));
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let mut c = Comparison {
        old_file: String::new(),
        new_file: String::new(),
        old_date: String::new(),
        new_date: String::new(),
        old_from_new: t,
        registration_inliers: inliers,
        registration_rms_mm: rms,
        old_pigment_dots: old_pig.len(),
        new_pigment_dots: new_pig.len(),
        matched: old_pig.len() - not_found.len(),
        median_darkness_change: median(changes.iter().map(|c| c.darkness_change).collect()),
        median_radius_change_mm: median(changes.iter().map(|c| c.radius_change_mm).collect()),
        faded,
        spread,
        not_found,
        changes,
        picture_png: Vec::new(),
    };
    c.picture_png = picture(a, &c).and_then(|img| png(&img)).unwrap_or_default();
    Ok(c)
}

/// The rotation and translation on which most dot pairs agree.
fn coarse_alignment(a: &[[f64; 2]], b: &[[f64; 2]]) -> Similarity {
    let centroid = |p: &[[f64; 2]]| {
        let n = p.len() as f64;
        let s = p.iter().fold([0.0, 0.0], |s, q| [s[0] + q[0], s[1] + q[1]]);
        [s[0] / n, s[1] / n]
    };
    let cb = centroid(b);
    let mut best = (0u32, Similarity::IDENTITY);
    let mut votes: HashMap<(i64, i64), u32> = HashMap::new();
    for deg in -MAX_ANGLE_DEG..=MAX_ANGLE_DEG {
        let rot = Similarity::new(1.0, f64::from(deg).to_radians(), 0.0, 0.0);
        votes.clear();
        let rb: Vec<[f64; 2]> = b
            .iter()
            .map(|q| rot.apply([q[0] - cb[0], q[1] - cb[1]]))
            .collect();
        for p in a {
            for q in &rb {
                let key = (
                    ((p[0] - q[0]) / VOTE_BIN_MM).round() as i64,
                    ((p[1] - q[1]) / VOTE_BIN_MM).round() as i64,
                );
                *votes.entry(key).or_insert(0) += 1;
            }
        }
        if let Some((k, n)) = votes.iter().max_by_key(|(_, n)| **n) {
            if *n > best.0 {
                // Rotate about b's centroid, then shift.
                let (tx, ty) = (k.0 as f64 * VOTE_BIN_MM, k.1 as f64 * VOTE_BIN_MM);
                let shift = Similarity::translation(-cb[0], -cb[1]);
                let t = Similarity::translation(tx, ty).compose(&rot.compose(&shift));
                best = (*n, t);
            }
        }
    }
    best.1
}

/// Nearest neighbours and least squares, a few rounds with a shrinking radius.
fn refine(a: &[[f64; 2]], b: &[[f64; 2]], mut t: Similarity) -> (Similarity, usize, f64) {
    let mut grid: HashMap<(i64, i64), Vec<usize>> = HashMap::new();
    let cell = 1.0;
    for (i, p) in a.iter().enumerate() {
        grid.entry(((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64))
            .or_default()
            .push(i);
    }
    let mut result = (t, 0, f64::INFINITY);
    for radius in [0.6, 0.4, 0.3, 0.2, 0.2] {
        let mut pairs = Vec::new();
        for q in b {
            let p = t.apply(*q);
            let (gx, gy) = ((p[0] / cell).floor() as i64, (p[1] / cell).floor() as i64);
            let mut best: Option<(usize, f64)> = None;
            for dy in -1..=1 {
                for dx in -1..=1 {
                    for &i in grid.get(&(gx + dx, gy + dy)).into_iter().flatten() {
                        let d = (a[i][0] - p[0]).hypot(a[i][1] - p[1]);
                        if d < radius && best.is_none_or(|b| d < b.1) {
                            best = Some((i, d));
                        }
                    }
                }
            }
            if let Some((i, _)) = best {
                pairs.push((*q, a[i]));
            }
        }
        let Some(fit) = Similarity::fit(&pairs) else {
            break;
        };
        t = fit;
        let rms = (pairs
            .iter()
            .map(|(q, p)| {
                let r = t.apply(*q);
                (r[0] - p[0]).powi(2) + (r[1] - p[1]).powi(2)
            })
            .sum::<f64>()
            / pairs.len().max(1) as f64)
            .sqrt();
        result = (t, pairs.len(), rms);
    }
    result
}

fn picture(a: &SkinMap, c: &Comparison) -> Option<RgbImage> {
    let pts: Vec<[f64; 2]> = a.dots.iter().map(|d| d.in_skin_mm).collect();
    if pts.is_empty() {
        return None;
    }
    let (x0, x1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p[0]), hi.max(p[0]))
        });
    let (y0, y1) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p[1]), hi.max(p[1]))
        });
    let s = 8.0;
    let (w, h) = (((x1 - x0 + 2.0) * s) as u32, ((y1 - y0 + 2.0) * s) as u32);
    if w == 0 || h == 0 || w > 4000 || h > 4000 {
        return None;
    }
    let mut img = RgbImage::from_pixel(w, h, Rgb([235, 225, 215]));
    let to_px = |q: [f64; 2]| {
        (
            ((q[0] - x0 + 1.0) * s) as i32,
            ((q[1] - y0 + 1.0) * s) as i32,
        )
    };
    for d in &a.dots {
        let colour = match d.kind {
            DotKind::Pigment => Rgb([60, 60, 80]),
            DotKind::Follicle => Rgb([150, 130, 120]),
        };
        imageproc::drawing::draw_filled_circle_mut(
            &mut img,
            to_px(d.in_skin_mm),
            ((d.radius_mm * s) as i32).max(1),
            colour,
        );
    }
    for d in &c.faded {
        imageproc::drawing::draw_hollow_circle_mut(
            &mut img,
            to_px(d.in_old_skin_mm),
            6,
            Rgb([255, 150, 0]),
        );
    }
    for d in &c.spread {
        imageproc::drawing::draw_hollow_circle_mut(
            &mut img,
            to_px(d.in_old_skin_mm),
            8,
            Rgb([220, 0, 0]),
        );
    }
    for p in &c.not_found {
        imageproc::drawing::draw_cross_mut(&mut img, Rgb([120, 0, 200]), to_px(*p).0, to_px(*p).1);
    }
    Some(img)
}

impl Comparison {
    /// As JSON (picture left out).
    ///
    /// # Errors
    /// Never in practice.
    pub fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }

    /// As a self-contained HTML page.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let pct = |v: f64| format!("{:+.0}%", 100.0 * v);
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Stipple touch-up comparison</title>\
             <style>body{{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}}\
             .sub{{color:#666}}table{{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}}td,th{{border-bottom:1px solid #eee;padding:.3em .5em;text-align:left}}\
             img{{max-width:100%;border:1px solid #ddd}}img.crop{{width:120px;height:120px}}</style></head><body>\
             <h1>Touch-up comparison</h1><p class=\"sub\">before: {} ({}) · now: {} ({})</p>",
            html_escape(&self.old_file),
            html_escape(&self.old_date),
            html_escape(&self.new_file),
            html_escape(&self.new_date)
        );
        let _ = write!(
            h,
            "<p><b>{}</b> of {} pigment dots found again ({} dots agree on the alignment, residual {:.3} mm). \
             <b>{}</b> faded ({} lighter or more), <b>{}</b> spread (radius {:.2} mm larger or more), {} not found. \
             Median change: darkness {}, radius {}.</p>\
             <p class=\"sub\">\"Not found\": an earlier pigment dot, in the part of the scalp both sessions saw, with no \
             pigment dot of the later session within {MATCH_MM} mm of it once the two maps are aligned: faded below what \
             the detector sees, covered (hair, glove) whenever it was in view, or read as a follicle in the later session.</p>",
            self.matched,
            self.old_pigment_dots,
            self.registration_inliers,
            self.registration_rms_mm,
            self.faded.len(),
            pct(-FADE_MIN),
            self.spread.len(),
            SPREAD_MIN_MM,
            self.not_found.len(),
            self.median_darkness_change.map_or("n/a".into(), pct),
            self.median_radius_change_mm
                .map_or("n/a".into(), |v| format!("{v:+.3} mm")),
        );
        if !self.picture_png.is_empty() {
            let _ = write!(
                h,
                "<figure><img alt=\"dot map\" src=\"data:image/png;base64,{}\"><figcaption>The earlier map: orange rings faded, \
                 red rings spread, purple crosses not found again.</figcaption></figure>",
                base64::engine::general_purpose::STANDARD.encode(&self.picture_png)
            );
        }
        for (title, list) in [("Faded", &self.faded), ("Spread", &self.spread)] {
            if list.is_empty() {
                continue;
            }
            let _ = write!(h, "<h2>{title}</h2><table><tr><th>where (mm)</th><th>darkness then → now</th><th>change</th><th>radius then → now</th><th>change</th><th>before · now ({} mm of skin, 1 mm bar)</th></tr>", report::CROP_MM);
            for c in list.iter() {
                let _ = write!(
                    h,
                    "<tr><td>{:.1}, {:.1}</td><td>{:.2} → {:.2}</td><td>{}</td><td>{:.2} → {:.2} mm</td><td>{:+.2} mm</td><td>{} {}</td></tr>",
                    c.in_old_skin_mm[0], c.in_old_skin_mm[1], c.darkness[0], c.darkness[1], pct(c.darkness_change),
                    c.radius_mm[0], c.radius_mm[1], c.radius_change_mm,
                    crop_cell(&c.before_png, "before"), crop_cell(&c.after_png, "now")
                );
            }
            h.push_str("</table>");
        }
        h.push_str("</body></html>");
        h
    }
}

/// A crop as an inline image, or a word saying there is none.
fn crop_cell(png: &[u8], what: &str) -> String {
    if png.is_empty() {
        return format!("<span class=\"sub\">no {what} picture</span>");
    }
    format!(
        "<img class=\"crop\" alt=\"{what}\" src=\"data:image/png;base64,{}\">",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn dot(p: [f64; 2], r: f64, dark: f64, kind: DotKind) -> MapDot {
        MapDot {
            in_skin_mm: p,
            radius_mm: r,
            darkness: Some(dark),
            kind,
            observations: 10,
        }
    }

    #[test]
    fn finds_faded_and_spread_dots_across_a_moved_map() -> Result<(), String> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut old = Vec::new();
        while old.len() < 300 {
            let p = [rng.gen_range(0.0..30.0), rng.gen_range(0.0..20.0)];
            if old
                .iter()
                .all(|d: &MapDot| (d.in_skin_mm[0] - p[0]).hypot(d.in_skin_mm[1] - p[1]) > 0.8)
            {
                let kind = if old.len() % 2 == 0 {
                    DotKind::Pigment
                } else {
                    DotKind::Follicle
                };
                old.push(dot(p, 0.25, 0.5, kind));
            }
        }
        // The new session's skin frame: rotated 4 degrees, shifted, same scale.
        let new_from_old = Similarity::new(1.0, 4f64.to_radians(), 7.3, -2.1);
        let mut new: Vec<MapDot> = old
            .iter()
            .map(|d| MapDot {
                in_skin_mm: new_from_old.apply(d.in_skin_mm),
                ..*d
            })
            .collect();
        // Dots 0, 2, 4 faded by 40 %; dots 6 and 8 spread by 0.12 mm.
        for i in [0, 2, 4] {
            new[i].darkness = Some(0.3);
        }
        for i in [6, 8] {
            new[i].radius_mm = 0.37;
        }
        let c = compare_maps(&SkinMap::from_dots(old.clone()), &SkinMap::from_dots(new))?;
        let expect: std::collections::BTreeSet<_> = [0, 2, 4]
            .iter()
            .map(|i| format!("{:.3},{:.3}", old[*i].in_skin_mm[0], old[*i].in_skin_mm[1]))
            .collect();
        let got: std::collections::BTreeSet<_> = c
            .faded
            .iter()
            .map(|d| format!("{:.3},{:.3}", d.in_old_skin_mm[0], d.in_old_skin_mm[1]))
            .collect();
        assert_eq!(got, expect);
        assert!(c
            .faded
            .iter()
            .all(|d| (d.darkness_change + 0.4).abs() < 1e-6));
        assert_eq!(c.spread.len(), 2);
        assert!(c
            .spread
            .iter()
            .all(|d| (d.radius_change_mm - 0.12).abs() < 1e-6));
        assert_eq!(c.matched, 150);
        assert!(c.registration_rms_mm < 1e-6, "{}", c.registration_rms_mm);
        Ok(())
    }
}
