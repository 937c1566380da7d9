//! The queue chart's SVG: every text inside the picture, and the caption of
//! an always-empty queue true whatever kept it empty.

use mkipc::svg::{queue_chart, Panel};
use quick_xml::events::Event;

/// A text element: its anchor x, its anchor, its font size, its text.
struct Text {
    x: f64,
    anchor: String,
    size: f64,
    text: String,
}

/// The picture's width (from `viewBox`) and its text elements.
fn texts(svg: &str) -> (f64, Vec<Text>) {
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut width = None;
    let mut out = Vec::new();
    let mut open: Option<Text> = None;
    loop {
        match reader.read_event().expect("well-formed") {
            Event::Eof => break,
            Event::Start(e) => {
                let attr = |name: &str| {
                    e.attributes()
                        .map(|a| a.unwrap())
                        .find(|a| a.key.as_ref() == name.as_bytes())
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                };
                match e.name().as_ref() {
                    b"svg" => {
                        let vb = attr("viewBox").unwrap();
                        let w: Vec<f64> = vb.split(' ').map(|v| v.parse().unwrap()).collect();
                        assert_eq!(w[0], 0.0);
                        width = Some(w[2]);
                    }
                    b"text" => {
                        open = Some(Text {
                            x: attr("x").unwrap().parse().unwrap(),
                            anchor: attr("text-anchor").unwrap_or_else(|| "start".into()),
                            size: attr("font-size").map_or(12.0, |s| s.parse().unwrap()),
                            text: String::new(),
                        })
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some(o) = open.as_mut() {
                    o.text.push_str(&t.decode().unwrap());
                }
            }
            Event::End(e) if e.name().as_ref() == b"text" => out.extend(open.take()),
            _ => {}
        }
    }
    (width.unwrap(), out)
}

fn panel(samples: Vec<(f64, usize)>, end_ms: f64) -> Panel {
    Panel {
        title: "jobs (bounded(2))".into(),
        samples,
        end_ms,
    }
}

#[test]
fn every_text_stays_inside_the_view_box() {
    for end in [5.0, 12.5, 987.25, 12345.5] {
        let svg = queue_chart(
            "Queue length",
            &[
                panel(vec![(0.0, 0), (1.0, 2), (end / 2.0, 0)], end),
                panel(vec![(0.0, 0)], end),
            ],
        );
        let (width, texts) = texts(&svg);
        assert!(texts.iter().any(|t| t.text.ends_with(" ms")));
        for t in texts {
            // A generous estimate of a sans-serif glyph's advance.
            let w = t.text.chars().count() as f64 * t.size * 0.6;
            let (left, right) = match t.anchor.as_str() {
                "end" => (t.x - w, t.x),
                "middle" => (t.x - w / 2.0, t.x + w / 2.0),
                _ => (t.x, t.x + w),
            };
            assert!(
                left >= 0.0 && right <= width,
                "{:?} spans {left:.1}..{right:.1}, outside 0..{width}",
                t.text
            );
        }
    }
}

#[test]
fn the_empty_queue_caption_holds_when_the_receiver_always_waited() {
    // A queue whose receiver always waited is empty too, and its messages
    // never waited with their senders: the caption must not say they did.
    let svg = queue_chart("Queue length", &[panel(vec![(0.0, 0)], 10.0)]);
    let (_, texts) = texts(&svg);
    let caption = texts
        .iter()
        .find(|t| t.text.starts_with("always empty"))
        .expect("an always-empty queue has a caption");
    assert!(
        !caption
            .text
            .contains("every message waited with its sender"),
        "{}",
        caption.text
    );
    assert!(caption.text.contains("taken at once"), "{}", caption.text);
    assert!(
        caption.text.contains("held by its sender"),
        "{}",
        caption.text
    );
    // A queue that held messages has no such caption.
    let svg = queue_chart("Queue length", &[panel(vec![(0.0, 0), (1.0, 1)], 10.0)]);
    assert!(!svg.contains("always empty"));
}
