//! A real headless browser for the HTML report: Debian's Chromium, installed
//! with `apt-get` when missing, run with no network to reach and a fresh
//! profile, taking screenshots that the tests read as pixels.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser's binary.
const CHROMIUM: &str = "chromium";

/// Installs Chromium if it is missing (once per test binary).
pub fn ensure_chromium() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let have = || {
            Command::new(CHROMIUM)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !have() {
            let _ = Command::new("sh")
                .args([
                    "-c",
                    "apt-get update -q && apt-get install -y -q chromium >/dev/null",
                ])
                .status();
        }
        assert!(
            have(),
            "the report tests need chromium, and apt-get could not install it"
        );
    });
}

/// A screenshot, as rows of RGB pixels.
pub struct Screenshot {
    pub width: usize,
    pub height: usize,
    rgb: Vec<u8>,
}

impl Screenshot {
    /// The pixel at (`x`, `y`).
    pub fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// How many pixels are not white.
    pub fn inked(&self) -> usize {
        self.rgb.chunks(3).filter(|p| p != &[255, 255, 255]).count()
    }

    /// The horizontal bands, at least `min_height` pixels high, in which some
    /// pixel in columns `xs` has one of `colors`: the rows of bars a chart
    /// drew, top to bottom, as (first y, height).
    pub fn bands(
        &self,
        xs: std::ops::Range<usize>,
        colors: &[[u8; 3]],
        min_height: usize,
    ) -> Vec<(usize, usize)> {
        let lit = |y: usize| {
            xs.clone()
                .filter(|&x| x < self.width)
                .any(|x| colors.contains(&self.at(x, y)))
        };
        let mut bands = Vec::new();
        let mut start = None;
        for y in 0..=self.height {
            match (y < self.height && lit(y), start) {
                (true, None) => start = Some(y),
                (false, Some(s)) => {
                    if y - s >= min_height {
                        bands.push((s, y - s));
                    }
                    start = None;
                }
                _ => {}
            }
        }
        bands
    }
}

/// Loads `page` in headless Chromium with a `width` × `height` window and
/// returns its screenshot, with how long the browser took from start to
/// the saved picture. A browser still going after `limit` is killed and the
/// test fails: a page that freezes the browser is a failure, not a wait.
pub fn screenshot(page: &Path, width: u32, height: u32, limit: Duration) -> (Screenshot, Duration) {
    ensure_chromium();
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("shot.png");
    let started = Instant::now();
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not render {} within {limit:?}",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = started.elapsed();
    let file = std::fs::File::open(&png)
        .unwrap_or_else(|e| panic!("chromium left no screenshot of {}: {e}", page.display()));
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    (
        Screenshot {
            width: info.width as usize,
            height: info.height as usize,
            rgb,
        },
        took,
    )
}
