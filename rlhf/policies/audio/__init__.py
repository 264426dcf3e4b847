"""Audio policy adapters. ``espeak_prosody`` (:mod:`.espeak_prosody`): a causal LM writes prosody
control tokens for a sentence and eSpeak NG speaks it; ``tts_prompts`` (:mod:`.data_stage`):
the sentence prompts of the TTS recipes. ``asr_whisper`` (:mod:`.asr_whisper`): a Whisper
encoder-decoder transcribes audio prompts, with its stages ``spoken_digits`` (:mod:`.asr_data`),
``asr_finetune`` (:mod:`.asr_sft`) and ``asr_eval`` (:mod:`.asr_eval`); shared model code in
:mod:`.asr_model`."""
