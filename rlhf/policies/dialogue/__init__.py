"""Spoken dialogue: a text-level turn policy for persona-consistent dialogue (StepAudio 2.5's
realtime branch: text turn first, then TTS), its synthetic data and its evaluation stage."""
