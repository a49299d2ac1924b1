import tempfile

from datasets import Dataset

from grpo_ext import GRPOConfig, GRPOTrainer
from grpo_ext.callbacks import MathEvalCallback
from grpo_ext.data.synthetic import synthetic_dataset
from grpo_ext.rewards import get_reward_funcs
from grpo_ext.tiny import build_char_tokenizer, build_tiny_model

model_dir, tokenizer = tempfile.mkdtemp(), build_char_tokenizer()
build_tiny_model(tokenizer).save_pretrained(model_dir)
tokenizer.save_pretrained(model_dir)

held_out = synthetic_dataset(16, language="zh", style="compact", num_steps=1, seed=7)
callback = MathEvalCallback({"chinese": held_out}, eval_steps=1, max_new_tokens=4, last_number_fallback=True)
train = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(10) for b in range(10)])
args = GRPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=8, num_generations=4,
                  max_completion_length=4, max_steps=2, use_cpu=True, bf16=False, gradient_checkpointing=False,
                  report_to="none", logging_steps=1)
trainer = GRPOTrainer(model=model_dir, reward_funcs=get_reward_funcs(["accuracy"], last_number_fallback=True),
                      args=args, train_dataset=train, callbacks=[callback])
trainer.train()
print([h["eval/chinese/top1"] for h in trainer.state.log_history if "eval/chinese/top1" in h])  # steps 0, 1, 2
