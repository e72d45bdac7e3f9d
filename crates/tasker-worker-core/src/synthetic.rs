//! Synthetic tasker-shaped step events for the demo, tests and benches.
//!
//! Every event is the fixture `fixtures/step-event.json` (the seed's `FfiStepEvent` field names plus
//! tasker-core's) with fresh ids, optionally padded through `task.context.padding` to a target size.

use serde_json::Value;

/// The fixture step event (about 2.7 KB compact).
pub const STEP_EVENT_FIXTURE: &str = include_str!("../../../fixtures/step-event.json");
/// The fixture success result (a tasker-core `StepExecutionResult`).
pub const COMPLETION_SUCCESS_FIXTURE: &str = include_str!("../../../fixtures/completion-success.json");

/// Canonical lowercase hyphenated UUID text of `value` (version 7 / variant bits set).
pub fn uuid_text(value: u128) -> String {
    let v = (value & !(0xF << 76) & !(0x3 << 62)) | (0x7 << 76) | (0x2 << 62);
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Produces step events with unique ids, each about `target_bytes` of compact JSON (never smaller than the
/// fixture).
#[derive(Debug, Clone)]
pub struct StepEventGenerator {
    template: Value,
    counter: u64,
    seed: u64,
    /// Random sizes: (compact size of the unpadded fixture, smallest, largest) target size.
    size_range: Option<(usize, usize, usize)>,
    /// xorshift64* state for the random sizes.
    rng: u64,
    /// The template serialised once, with the byte offsets of its three ids (event, step, workflow step):
    /// [`Self::next_event_text`] copies it and writes the ids in place. Built on first use; only for a fixed
    /// size (a size range changes the padding per event).
    text: Option<TextTemplate>,
}

/// A serialised event and where its 36-byte ids are.
#[derive(Debug, Clone)]
struct TextTemplate {
    text: String,
    event_id_at: usize,
    step_uuid_at: [usize; 2],
}

impl StepEventGenerator {
    /// A generator whose events serialise to about `target_bytes` (at least the fixture's size).
    pub fn new(target_bytes: usize, seed: u64) -> Self {
        let mut template: Value = serde_json::from_str(STEP_EVENT_FIXTURE).expect("fixture is valid JSON");
        let base = serde_json::to_vec(&template).expect("serialises").len();
        if target_bytes > base + 16 {
            // 14 bytes of `"padding":"",` overhead.
            let pad = "x".repeat(target_bytes - base - 14);
            if let Some(ctx) = template.pointer_mut("/task_sequence_step/task/context") {
                ctx["padding"] = Value::String(pad);
            }
        }
        Self {
            template,
            counter: 0,
            seed,
            size_range: None,
            rng: seed | 1,
            text: None,
        }
    }

    /// A generator whose events serialise to a size drawn uniformly from `min_bytes..=max_bytes` (each at
    /// least the fixture's size), reproducibly from `seed`.
    pub fn with_size_range(min_bytes: usize, max_bytes: usize, seed: u64) -> Self {
        let mut g = Self::new(0, seed);
        let base = Self::fixture_len();
        g.size_range = Some((base, min_bytes.min(max_bytes), max_bytes.max(min_bytes)));
        g
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Size of the fixture as compact JSON.
    pub fn fixture_len() -> usize {
        let v: Value = serde_json::from_str(STEP_EVENT_FIXTURE).expect("fixture is valid JSON");
        serde_json::to_vec(&v).expect("serialises").len()
    }

    /// The next event as JSON text with its event id and step uuid: the bytes [`Self::next_event`] would
    /// serialise to, made by copying the serialised template and writing the fresh ids in place (a memcpy,
    /// not a tree clone and a serialisation per event). A size range falls back to serialising the tree.
    pub fn next_event_text(&mut self) -> (String, String, Box<str>) {
        if self.size_range.is_some() {
            let (id, event) = self.next_event();
            let step = event["step_uuid"].as_str().unwrap_or_default().to_string();
            let text = serde_json::to_string(event).expect("a JSON tree serialises");
            return (id, step, text.into_boxed_str());
        }
        let template = self.text.get_or_insert_with(|| Self::text_template(&self.template));
        self.counter += 1;
        let id = uuid_text(((self.seed as u128) << 64) | self.counter as u128);
        let step = uuid_text(((self.seed as u128 ^ 0x5eed) << 64) | self.counter as u128);
        // Same-length ASCII over ASCII: a copy in place, no UTF-8 check of the whole event.
        let mut text = template.text.clone();
        text.replace_range(template.event_id_at..template.event_id_at + 36, &id);
        for at in template.step_uuid_at {
            text.replace_range(at..at + 36, &step);
        }
        (id, step, text.into_boxed_str())
    }

    /// Serialises `template` with three distinct placeholder ids and finds each one's offset.
    fn text_template(template: &Value) -> TextTemplate {
        const EVENT: &str = "00000000-0000-7000-8000-00000000e1d0";
        const STEP: &str = "00000000-0000-7000-8000-00000000571e";
        const WORKFLOW_STEP: &str = "00000000-0000-7000-8000-00000000f057";
        let mut t = template.clone();
        t["event_id"] = Value::String(EVENT.into());
        t["step_uuid"] = Value::String(STEP.into());
        if let Some(ws) = t.pointer_mut("/task_sequence_step/workflow_step") {
            ws["workflow_step_uuid"] = Value::String(WORKFLOW_STEP.into());
        }
        let text = serde_json::to_string(&t).expect("a JSON tree serialises");
        let at = |needle: &str| {
            let mut found = text.match_indices(needle).map(|(i, _)| i);
            let first = found.next().expect("the placeholder id is in the template");
            assert!(found.next().is_none(), "the placeholder id {needle} is unique");
            first
        };
        TextTemplate {
            event_id_at: at(EVENT),
            step_uuid_at: [at(STEP), at(WORKFLOW_STEP)],
            text,
        }
    }

    /// Steps the counter back by one, so the next event repeats the last ids (after a refused write).
    pub fn rewind(&mut self) {
        self.counter = self.counter.saturating_sub(1);
    }

    /// The next event (ids derived from the seed and a counter) and its event id.
    pub fn next_event(&mut self) -> (String, &Value) {
        self.counter += 1;
        if let Some((base, min, max)) = self.size_range {
            let target = min + (self.next_random() % (max - min + 1) as u64) as usize;
            if let Some(ctx) = self.template.pointer_mut("/task_sequence_step/task/context") {
                if target > base + 16 {
                    // 14 bytes of `"padding":"",` overhead.
                    ctx["padding"] = Value::String("x".repeat(target - base - 14));
                } else if let Some(map) = ctx.as_object_mut() {
                    map.remove("padding");
                }
            }
        }
        let id = uuid_text(((self.seed as u128) << 64) | self.counter as u128);
        let step = uuid_text(((self.seed as u128 ^ 0x5eed) << 64) | self.counter as u128);
        self.template["event_id"] = Value::String(id.clone());
        self.template["step_uuid"] = Value::String(step.clone());
        if let Some(ws) = self.template.pointer_mut("/task_sequence_step/workflow_step") {
            ws["workflow_step_uuid"] = Value::String(step);
        }
        (id, &self.template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_events_are_the_trees_serialised() {
        for bytes in [0, 4000] {
            let (mut a, mut b) = (StepEventGenerator::new(bytes, 3), StepEventGenerator::new(bytes, 3));
            for _ in 0..3 {
                let (id, tree) = a.next_event();
                let expected = serde_json::to_string(tree).unwrap();
                let (text_id, step, text) = b.next_event_text();
                assert_eq!((text_id.as_str(), &*text), (id.as_str(), expected.as_str()));
                assert_eq!(tree["step_uuid"], step.as_str());
            }
        }
    }

    #[test]
    fn events_are_unique_padded_and_keep_the_seed_fields() {
        let mut g = StepEventGenerator::new(4000, 1);
        let (a, ev) = g.next_event();
        let len = serde_json::to_vec(ev).unwrap().len();
        assert!((3990..=4010).contains(&len), "{len}");
        assert_eq!(ev["task_sequence_step"]["task"]["namespace_name"], "linear_workflow_ts");
        assert!(ev["task_sequence_step"]["step_definition"]["handler"]["handler_class"].is_string());
        let (b, _) = g.next_event();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "7");
    }

    #[test]
    fn random_sizes_cover_the_range() {
        let base = StepEventGenerator::fixture_len();
        let mut g = StepEventGenerator::with_size_range(base, 200_000, 7);
        let sizes: Vec<usize> = (0..200)
            .map(|_| serde_json::to_vec(g.next_event().1).unwrap().len())
            .collect();
        assert!(sizes.iter().all(|&n| (base..=200_010).contains(&n)), "{sizes:?}");
        assert!(sizes.iter().any(|&n| n > 100_000) && sizes.iter().any(|&n| n < 50_000));
    }
}
