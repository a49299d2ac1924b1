"""Labelled whole completions in the forms real models write, with the gold and the right reward.

Written for this project (the shapes follow GSM8K's and MATH's reference solutions, GPT-3's GSM8K
samples ending in "A: N", and chat models' bold or LaTeX-display final lines). Each case is
(completion, gold, reward). Negatives include a wrong final answer after a right intermediate one.
Used by tests/test_real_outputs.py and benchmarks/verify_throughput.py.
"""

CASES = [
    # marker forms
    ("Natalia sold 48/2 = 24 clips in May.\nAltogether 48+24 = 72.\n#### 72", "72", 1.0),
    ("She sold 48/2 = 24 in May, so 48 + 24 = 72 in total.\nA: 72", "72", 1.0),
    ("So she earned 12 * 50/60 = 10 dollars.\nA: $10", "10", 1.0),
    ("The total is 3 + 4 = 7.\nAnswer: 7", "7", 1.0),
    ("Adding them up gives 1,234 apples.\nFinal answer: 1,234", "1234", 1.0),
    ("Adding the parts:\n\n**42**", "42", 1.0),
    ("So the final answer is **15 dollars**.", "15", 1.0),
    ("Therefore, $x = \\boxed{\\dfrac{3}{4}}$.", "\\frac{3}{4}", 1.0),
    ("The roots are $\\boxed{2}$ and $\\boxed{-3}$.", "2, -3", 1.0),
    ("The solutions are \\boxed{3}, \\boxed{5}.", "5, 3", 1.0),
    ("所以一共有 18 小包。\n答案是 18", "18", 1.0),
    ("The answer is $\\frac{\\sqrt{3}}{2}$.", "\\frac{\\sqrt3}{2}", 1.0),
    ("The matrix is $\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}$.", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", 1.0),
    ("So $\\boxed{x \\geq 5}$.", "x >= 5", 1.0),
    ("This gives the interval $\\boxed{(-\\infty, 3]}$.", "(-\\infty,3]", 1.0),
    ("The point is $\\boxed{(1, 2)}$.", "(1,2)", 1.0),
    ("The area is $\\boxed{12\\text{ cm}^2}$.", "12", 1.0),
    ("About 28 percent of them.\nThe answer is 28 percent.", "28\\%", 1.0),
    ("The count is \\boxed{1\u2009000}.", "1000", 1.0),
    ("The ratio is \\boxed{10/9}.", "\\frac{10}{9}", 1.0),
    # no marker: math-verify's extraction, then the last number
    ("We compute $r = \\sqrt{0^2 + 3^2} = 3$ and the angle is $\\frac{\\pi}{2}$.", "\\frac{\\pi}{2}", 1.0),
    ("Answer \\[ 9 \\]", "9", 1.0),
    ("-5", "-5", 1.0),
    ("She has 5 apples and buys 7 more, so she has 12", "12", 1.0),
    ("$[0,1)$", "[0,1)", 1.0),
    # negatives
    ("First 12 apples, then she gives 3 away.\n#### 9", "12", 0.0),  # right intermediate, wrong final
    ("48/2 = 24, and 48 + 24 = 72... wait, 48 + 24 = 73.\nA: 73", "72", 0.0),
    ("So the answer is $\\boxed{\\frac{1}{3}}$.", "\\frac{1}{2}", 0.0),
    ("The point is $\\boxed{(2, 1)}$.", "(1,2)", 0.0),
    ("I am not sure how to solve this.", "4", 0.0),  # no answer at all
    ("The answer is 3. Actually, correcting myself: \\boxed{4}", "3", 0.0),  # the box is the final word
    ("The solution is $\\boxed{\\frac{1}{2004!}}$.", "\\frac{1}{2006!}", 0.0),
]
