"""Audio policy adapters. ``espeak_prosody`` (:mod:`.espeak_prosody`): a causal LM writes prosody
control tokens for a sentence and eSpeak NG speaks it; ``tts_prompts`` (:mod:`.data_stage`):
the sentence prompts of the TTS recipes."""
