//! Any bytes as an event stream: the reader yields events or located errors, never
//! panics; an event it returns survives a JSON round trip, and the learner takes it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut learner = imprint_engine::Learner::new(Default::default());
    for event in imprint_engine::EventReader::new(data) {
        let Ok(event) = event else { continue };
        let json = serde_json::to_vec(&event).expect("events serialize");
        let again = imprint_engine::event::parse_line(&json, 1).expect("serialized events parse");
        assert_eq!(again, event);
        learner.observe(&event);
    }
    for profile in learner.profiles() {
        assert!(imprint_schema::validate(&profile).is_empty(), "learned profiles are valid");
    }
});
