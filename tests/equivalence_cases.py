"""Labelled (prediction, gold, equivalent?) cases by category, written here by hand.

Used by tests/test_equivalence.py and by benchmarks/verify_throughput.py (accuracy of grpo-ext
against plain math-verify on the same cases).
"""

CASES = {
    "numbers": [
        ("12", "12", True),
        ("-7", "-7", True),
        ("12.0", "12", True),
        ("0012", "12", True),
        ("1,000", "1000", True),
        ("1{,}000", "1000", True),
        ("13", "12", False),
        ("-12", "12", False),
        ("1000", "1,000,000", False),
    ],
    "fractions_decimals": [
        ("0.5", "\\frac{1}{2}", True),
        ("\\dfrac{3}{4}", "0.75", True),
        ("\\tfrac12", "1/2", True),
        ("-\\frac{1}{3}", "\\frac{-1}{3}", True),
        ("2/4", "\\frac{1}{2}", True),
        ("\\frac{1}{3}", "\\frac{1}{2}", False),
        ("\\frac{1}{2004!}", "\\frac{1}{2006!}", False),
        ("0.33", "\\frac{1}{3}", False),
    ],
    "radicals": [
        ("\\sqrt{8}", "2\\sqrt{2}", True),
        ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt{3}}", True),
        ("\\sqrt{12}", "3\\sqrt{2}", False),
        ("2+\\sqrt{3}", "\\sqrt{3}+2", True),
    ],
    "intervals": [
        ("[1,2)", "[1,2)", True),
        ("(-\\infty, 3]", "(-\\infty,3]", True),
        ("[1,2]", "[1,2)", False),
        ("(0,1)", "(0,2)", False),
    ],
    "sets_lists": [
        ("3, 1, 2", "1, 2, 3", True),
        ("\\{3, 1\\}", "\\{1, 3\\}", True),
        ("1, 2", "1, 2, 3", False),
        ("2, -2", "-2, 2", True),
        ("\\frac{1}{2}, 3", "3, 0.5", True),
        ("1, 4", "1, 2", False),
    ],
    "polynomials_equations": [
        ("(x+1)^2", "x^2+2x+1", True),
        ("x^2-1", "(x-1)(x+1)", True),
        ("y = 2x+3", "y=2x+3", True),
        ("x = 5", "5", True),
        ("x^2+1", "x^2-1", False),
        ("2x+3", "3x+2", False),
    ],
    "matrices": [
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
        ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}", False),
        ("\\begin{pmatrix}0.5\\\\1\\end{pmatrix}", "\\begin{pmatrix}\\frac{1}{2}\\\\1\\end{pmatrix}", True),
    ],
    "percent_money": [
        ("50\\%", "50", True),
        ("50\\%", "0.5", True),
        ("25%", "0.5", False),
        ("\\$12", "12", True),
        ("$12", "12", True),
        ("\\$12.50", "12.5", True),
        ("12 dollars", "12", True),
        ("\\$13", "12", False),
    ],
    "degrees_units": [
        ("30^\\circ", "30", True),
        ("30^{\\circ}", "30", True),
        ("45°", "45", True),
        ("5\\text{ cm}", "5", True),
        ("5 \\text{cm}^2", "5", True),
        ("12 meters", "12", True),
        ("31^\\circ", "30", False),
    ],
    "text": [
        ("East", "east", True),
        ("\\text{odd}", "odd", True),
        ("west", "east", False),
        ("(C)", "C", True),
        ("\\text{(B)}", "B", True),
        ("B", "C", False),
    ],
    "chinese": [
        ("5 元", "5", True),
        ("12个", "12", True),
        ("３分之２", "\\frac{2}{3}", True),
        ("百分之50", "0.5", True),
        ("７", "7", True),
        ("6 元", "5", False),
    ],
}

ALL_CASES = [(pred, gold, expected, category) for category, rows in CASES.items() for pred, gold, expected in rows]
