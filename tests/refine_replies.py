"""Refinement replies the parser must accept (with the answer it must find) and must reject.

Shared by the parser unit tests and the end-to-end tests that send them through the real local server.
"""

from __future__ import annotations

ANALYSIS = "1. The answer is too short and lacks structure.\n\n2. "

ACCEPTED_REPLIES: list[tuple[str, str]] = [
    (ANALYSIS + "[Better Answer] Paris is the capital of France. [End]", "Paris is the capital of France."),
    (ANALYSIS + "[Better Answer]\nLine one.\n\n- bullet\n[End]\n", "Line one.\n\n- bullet"),
    (ANALYSIS + "[Better Answer] No end tag here.", "No end tag here."),
    (ANALYSIS + "**[Better Answer]** Bold tags. **[End]**", "Bold tags."),
    (ANALYSIS + "**[Better Answer]**\nBold start only.\n[End]", "Bold start only."),
    (ANALYSIS + "Better Answer: A heading without brackets.\n[End]", "A heading without brackets."),
    (ANALYSIS + "**Better Answer:**\nBold heading.", "Bold heading."),
    ("### Better Answer\nMarkdown heading.\n### Notes\nmore", "Markdown heading.\n### Notes\nmore"),
    (ANALYSIS + "[better answer] lower case [end]", "lower case"),
    (ANALYSIS + "[BETTER ANSWER]: upper case [END]", "upper case"),
    (ANALYSIS + "[Better Answer] Kept. [End]\n\nI hope this helps! Let me know.", "Kept."),
    (ANALYSIS + "[Better Answer]\n[Better Answer] Repeated tag. [End]", "Repeated tag."),
    (ANALYSIS + "[Better Answer] Same. [End]\n[Better Answer] Same. [End]", "Same."),
    ("Answer in the format of [Better Answer] your answer [End].\n\n[Better Answer] Real. [End]", "Real."),
    (ANALYSIS + "[Improved Answer] Improved. [End]", "Improved."),
    (ANALYSIS + "[Revised Answer]\nRevised.\n[End of Answer]", "Revised."),
    (ANALYSIS + "[Better Answer] The End of days is near. Ending well. [End]", "The End of days is near. Ending well."),
    ("2. Better Answer: Numbered heading.", "Numbered heading."),
]

# Replies it must reject (kept as failures, never written as an empty response).
REJECTED_REPLIES: list[str] = [
    "",
    "The answer is fine as it is.",
    "Here is a better answer: mid-sentence prose is not a tag.",
    ANALYSIS + "[Better Answer] [End]",
    ANALYSIS + "[Better Answer]\n   \n",
    "The answer should be in the format of [Better Answer] your answer [End]",
    ANALYSIS + "[Better Answer] One. [End]\n[Better Answer] Two. [End]",
    "**[Better Answer]** **[End]**",
]
