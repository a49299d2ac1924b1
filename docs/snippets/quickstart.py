# Runs offline: a tiny model built locally stands in for a real one such as
# "Qwen/Qwen2.5-Math-1.5B-Instruct" (pass its Hub id as `model` instead).
import tempfile

from datasets import Dataset

from grpo_ext import GRPOConfig, GRPOTrainer
from grpo_ext.rewards import get_reward_funcs
from grpo_ext.tiny import build_char_tokenizer, build_tiny_model

model_dir = tempfile.mkdtemp()
tokenizer = build_char_tokenizer()
build_tiny_model(tokenizer).save_pretrained(model_dir)
tokenizer.save_pretrained(model_dir)

dataset = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a in range(10) for b in range(10)])
args = GRPOConfig(output_dir=tempfile.mkdtemp(), loss_type="grpo", beta=0.04, kl_estimator="k3",
                  per_device_train_batch_size=8, num_generations=4, max_completion_length=4, max_steps=2,
                  use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none")
accuracy = get_reward_funcs(["accuracy"], last_number_fallback=True)  # the prompts ask for a bare number
trainer = GRPOTrainer(model=model_dir, reward_funcs=accuracy, args=args, train_dataset=dataset)
trainer.train()
