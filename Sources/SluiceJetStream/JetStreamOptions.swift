import SluiceNATS
