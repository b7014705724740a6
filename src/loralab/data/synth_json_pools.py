"""Value pools of the synthetic JSON-extraction data: cities, names, items, events,
currencies and the words dates and numbers are written with."""

import datetime as dt

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve")
CITIES = (
    "Paris", "London", "Tokyo", "New York", "Berlin", "Madrid", "Rome", "Lisbon", "Dublin",
    "Amsterdam", "Vienna", "Prague", "Warsaw", "Oslo", "Stockholm", "Helsinki", "Copenhagen",
    "Athens", "Istanbul", "Cairo", "Nairobi", "Cape Town", "Lagos", "Dubai", "Mumbai", "Delhi",
    "Bangkok", "Singapore", "Hong Kong", "Seoul", "Sydney", "Melbourne", "Auckland", "Toronto",
    "Vancouver", "Montreal", "Chicago", "Boston", "Seattle", "San Francisco", "Los Angeles",
    "Miami", "Denver", "Austin", "Mexico City", "Bogota", "Lima", "Santiago", "Buenos Aires",
    "Rio de Janeiro", "Sao Paulo", "Zurich", "Geneva", "Munich", "Barcelona", "Edinburgh",
    "Kuala Lumpur", "Manila", "Osaka", "Reykjavik",
)
FIRST_NAMES = (
    "Maria", "James", "Aisha", "Chen", "Olivia", "Liam", "Sofia", "Noah", "Fatima", "Lucas",
    "Emma", "Mateo", "Priya", "Ethan", "Yuki", "Amara", "Daniel", "Ingrid", "Omar", "Grace",
    "Hiroshi", "Elena", "Kwame", "Chloe", "Ravi", "Hannah", "Diego", "Leila", "Samuel", "Nina",
    "Tomas", "Zara", "Victor", "Mei", "Patrick", "Ana", "Jonas", "Camille", "Arjun", "Rosa",
)
LAST_NAMES = (
    "Garcia", "Smith", "Khan", "Wang", "Johnson", "Müller", "Rossi", "Okafor", "Tanaka", "Silva",
    "Brown", "Novak", "Patel", "Nguyen", "Kowalski", "Dubois", "Larsen", "Haddad", "Kim", "Lopez",
    "Schmidt", "Andersson", "Mensah", "O'Brien", "Ivanova", "Costa", "Fischer", "Ahmed", "Park",
    "Martin", "Moreau", "Jensen", "Cohen", "Sato", "Reyes", "Walker", "Bianchi", "Singh",
    "Murphy", "Yilmaz",
)
FOOD_ITEMS = (
    "margherita pizzas", "pepperoni pizzas", "chicken burritos", "veggie burgers",
    "cheeseburgers", "bowls of ramen", "orders of pad thai", "spring rolls", "falafel wraps",
    "caesar salads", "beef tacos", "sushi platters", "portions of fries", "chicken curries",
    "poke bowls", "bagels with cream cheese", "croissants", "lattes", "iced coffees",
    "bubble teas", "chocolate muffins", "slices of cheesecake", "pho bowls", "lamb kebabs",
    "mushroom risottos", "fish and chips", "club sandwiches", "dumplings", "smoothies",
    "bibimbap bowls",
)
PRODUCTS = (
    "wireless headphones", "running shoes", "coffee maker", "standing desk", "yoga mat",
    "phone case", "winter jacket", "office chair", "blender", "mechanical keyboard", "backpack",
    "air fryer", "desk lamp", "electric toothbrush", "smart watch", "bluetooth speaker",
    "hiking boots", "water bottle", "laptop stand", "vacuum cleaner", "rain coat", "bed sheets",
    "gaming mouse", "tablet", "kettle", "sunglasses", "suitcase", "camera lens", "bookshelf",
    "throw pillows",
)
EVENTS = (
    "Hamilton", "the Coldplay concert", "the Lakers game", "Swan Lake", "the jazz festival",
    "the comedy night", "The Lion King", "the Champions League final", "the opera",
    "the film festival", "the Taylor Swift show", "the science museum", "the marathon expo",
    "the symphony", "Les Misérables", "the art fair", "the rugby match", "the tennis final",
    "the stand-up show", "the food festival", "the planetarium show", "the ballet",
    "the rock festival", "the baseball game", "the magic show",
)
TASKS = (
    "call the dentist", "pick up the dry cleaning", "water the plants", "submit the expense report",
    "take my medication", "feed the cat", "renew my passport", "pay the electricity bill",
    "book a haircut", "call my mother", "back up my laptop", "buy milk", "send the invoice",
    "walk the dog", "check in for my flight", "return the library books", "update my resume",
    "email the landlord", "charge my phone", "pick up the kids", "cancel the gym membership",
    "prepare the slides", "order a birthday cake", "stretch", "read the contract",
    "collect the parcel", "schedule the car service", "clean the fridge", "review the budget",
    "start the laundry",
)
CURRENCIES = (  # (ISO code, symbol or "", word)
    ("USD", "$", "dollars"), ("EUR", "€", "euros"), ("GBP", "£", "pounds"),
    ("JPY", "¥", "yen"), ("CHF", "", "Swiss francs"), ("CAD", "C$", "Canadian dollars"),
    ("INR", "₹", "rupees"), ("AUD", "A$", "Australian dollars"),
)
FIRST_DATE, DATE_SPAN_DAYS = dt.date(2025, 1, 1), 730
