from grpo_ext.rewards import get_reward_funcs, register_reward
from grpo_ext.verify import extract_answer


def short_answer_reward(completions, **kwargs):
    """0.2 for a stated final answer of at most 10 characters, else 0."""
    answers = [extract_answer(c if isinstance(c, str) else c[-1]["content"]) for c in completions]
    return [0.2 if a is not None and len(a) <= 10 else 0.0 for a in answers]


register_reward("short_answer", short_answer_reward)
accuracy, short = get_reward_funcs(["accuracy", "short_answer"])
print(accuracy(["The answer is \\boxed{42}."], answer=["42"]), short(["\\boxed{42}"]))  # [1.0] [0.2]
