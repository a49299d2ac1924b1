from grpo_ext.data.synthetic import synthetic_dataset
from grpo_ext.evaluation import compare_results, evaluate, results_table
from grpo_ext.tiny import build_char_tokenizer, build_tiny_model

tokenizer = build_char_tokenizer()
model = build_tiny_model(tokenizer)                     # untrained: expect ~0% accuracy
english = synthetic_dataset(20, language="en", style="compact", num_steps=1)
chinese = synthetic_dataset(20, language="zh", style="compact", num_steps=1)
results = [evaluate(model, tokenizer, ds, k=4, max_new_tokens=4, last_number_fallback=True)
           for ds in (english, chinese)]
print(results_table(results))                           # | benchmark | n | top1 | maj@4 | pass@4 |
print(compare_results(results, results))                # before -> after, in points
