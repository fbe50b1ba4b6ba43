use std::sync::Arc;
use stipple::mailbox::Mailbox;
use stipple::source::{DemoConfig, DemoSource};
fn main() {
    let hints = Arc::new(Mailbox::new());
    let t = std::time::Instant::now();
    let mut src = DemoSource::new(DemoConfig::new(1), hints);
    eprintln!("new {:?}", t.elapsed());
    src.free_run();
    for i in 0..120 {
        let t = std::time::Instant::now();
        let f = src.next_frame();
        if i % 30 == 0 {
            eprintln!("frame {i} {:?} tip {:?}", t.elapsed(), f.hand_tip);
            f.image.save(format!("/tmp/demo_{i}.png")).unwrap();
        }
    }
}
