"""Requests that no offered tool serves, for synthetic ``no_call`` examples.

Three kinds, counted separately in the generator's stats:

- **chit-chat**: general questions and writing tasks with a short reference answer;
- **withheld tool**: a request for a real catalog tool that is *not* offered, the other tools of
  its service are (the nearest miss: same domain, capability missing);
- **unsupported action**: a verb no tool of the service offers on one of its objects ("export
  all payments"), worded by :data:`UNSUPPORTED_FRAMES`.
"""

from __future__ import annotations

CHITCHAT: list[tuple[str, str]] = [
    ("What's the capital of Australia?", "The capital of Australia is Canberra."),
    ("Tell me a joke.", "Why did the developer go broke? Because he used up all his cache."),
    ("How many days are there in a leap year?", "A leap year has 366 days."),
    ("What's 12 times 8?", "12 × 8 = 96."),
    ("Write a haiku about autumn.", "Crisp leaves drift and fall / the maple lets its red go / cold light on the path"),
    ("Who wrote Pride and Prejudice?", "Jane Austen wrote Pride and Prejudice (1813)."),
    ("How do I boil an egg?", "Put the egg in boiling water: about 7 minutes for a jammy yolk, 10 for hard-boiled, then cool it in cold water."),
    ("thanks, that's all for now", "You're welcome! Let me know if you need anything else."),
    ("Good morning!", "Good morning! What can I do for you?"),
    ("What does API stand for?", "API stands for application programming interface."),
    ("Can you explain what a REST API is in one sentence?", "A REST API exposes resources at URLs that clients read and change with standard HTTP methods such as GET, POST, PUT and DELETE."),
    ("Translate 'thank you' into Spanish.", "'Thank you' in Spanish is 'gracias'."),
    ("What's the difference between weather and climate?", "Weather is the short-term state of the atmosphere; climate is its average over decades."),
    ("Give me a synonym for 'quick'.", "Fast, rapid or swift."),
    ("How many minutes are in three hours?", "Three hours are 180 minutes."),
    ("Write a one-line motivational quote for my team.", "Small steps every day add up to big results."),
    ("hi there", "Hi! How can I help?"),
    ("What is the boiling point of water in Fahrenheit?", "Water boils at 212 °F at sea level."),
    ("Summarize the plot of Romeo and Juliet in one sentence.", "Two young lovers from feuding families in Verona marry in secret, and a chain of misunderstandings ends in both their deaths."),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa."),
    ("What's a good name for a golden retriever?", "Maybe Sunny, Maple or Biscuit."),
    ("How do you say good night in French?", "Good night in French is 'bonne nuit'."),
    ("Is a tomato a fruit or a vegetable?", "Botanically a tomato is a fruit; in cooking it is treated as a vegetable."),
    ("Explain recursion like I'm five.", "Recursion is when something is explained using a smaller copy of itself, like a set of nesting dolls."),
    ("what's the square root of 144", "The square root of 144 is 12."),
    ("Can you recommend a good book about habits?", "Atomic Habits by James Clear is a popular, practical choice."),
    ("Write a polite email sign-off.", "Best regards,"),
    ("What's the largest planet in the solar system?", "Jupiter is the largest planet in the solar system."),
    ("ok cool", "Great! Anything else I can help with?"),
    ("Which is heavier, a kilo of feathers or a kilo of steel?", "Neither: both weigh one kilogram."),
    ("What year did the first person walk on the moon?", "1969: Neil Armstrong, on 20 July."),
    ("Suggest a name for our team's Slack channel about releases.", "How about #release-radar?"),
    ("Convert 10 kilometres to miles.", "10 km is about 6.2 miles."),
    ("What's the plural of 'cactus'?", "Cacti, or cactuses."),
    ("Tell me something interesting about octopuses.", "Octopuses have three hearts and blue blood."),
    ("Can you help me come up with a birthday message for a colleague?", "Happy birthday! Thanks for everything you bring to the team, enjoy your day."),
]

UNSUPPORTED_VERBS = ["delete", "export", "rename", "merge", "archive", "print", "duplicate", "translate"]

UNSUPPORTED_FRAMES = [
    "Can you {verb} all the {nouns}?", "Please {verb} this {noun} for me.", "I want to {verb} a {noun}.",
    "how do i {verb} {nouns} here", "{Verb} every {noun} from last month, please.", "Could you {verb} the {noun} I just mentioned?",
    "{verb} the {nouns} pls", "Is there a way to {verb} {nouns} in bulk?",
]
