use stipple::calib::{detect_board, BoardSpec};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = BoardSpec::new(9, 6, 3.0)?;
    let path = std::env::args().nth(1).unwrap();
    let img = image::open(&path)?.to_luma8();
    let found = detect_board(&img, &spec).map_err(|e| e.to_string())?;
    for p in &found.corners_in_image {
        println!("{:.4} {:.4}", p[0], p[1]);
    }
    Ok(())
}
