from grpo_ext.verify import extract_answer, is_equivalent, stats

assert extract_answer("First \\boxed{5}, corrected: \\boxed{\\frac{7}{2}}") == "\\frac{7}{2}"
assert extract_answer("She pays 12 dollars.\n#### 12") == "12"
assert extract_answer("小明一共有 5 个苹果。答案是 5") == "5"
assert is_equivalent("3.5", "\\frac{7}{2}")            # exact path, no symbolic algebra
assert is_equivalent("\\sqrt{8}", "2\\sqrt{2}")         # math-verify, in the sandbox
assert not is_equivalent("\\frac{1}{2004!}", "\\frac{1}{2006!}")
assert not is_equivalent("9^{9^{9^9}}", "1")            # refused before any parser sees it
print(stats())
